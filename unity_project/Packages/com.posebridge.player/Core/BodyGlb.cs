// A posebridge body .glb read without an engine: the rest skeleton, the mesh, every skinning weight
// set, and the definition in extras.posebridge; and the same body as glTFast lays it out in Unity
// ("import space": glTF with the x axis mirrored, metres), so the engine-facing code and the tests
// share one implementation of the math: rest pose, bind poses, posed bones and skinning.
using System;
using System.Collections.Generic;

namespace PoseBridge.Core
{
    public sealed class BodyGlb
    {
        public readonly string Origin;
        public readonly BodyDefinition Definition;
        public readonly Affine[] RestWorldGltf; // per bone (= skin joint), glTF axes, metres
        public readonly Affine[] InverseBindGltf;
        public readonly double[] Positions; // V x 3, glTF axes, metres
        public readonly double[] Normals; // V x 3
        public readonly double[] Colors; // V x 4 in [0, 1] (COLOR_0)
        public readonly double[] PartAlong; // V x 2 (_PART_ALONG: part index, limb coordinate)
        public readonly int[] Triangles; // F x 3, counter-clockwise in glTF
        public readonly int[] InfluenceStart; // V + 1 offsets into InfluenceBone / InfluenceWeight
        public readonly int[] InfluenceBone;
        public readonly double[] InfluenceWeight; // per vertex largest first, zeros dropped

        public int VertexCount { get { return Positions.Length / 3; } }
        public int BoneCount { get { return RestWorldGltf.Length; } }

        BodyGlb(string origin, BodyDefinition d, Affine[] rest, Affine[] ibm, double[] pos, double[] nrm, double[] col, double[] pa, int[] tri,
            int[] start, int[] bone, double[] weight)
        {
            Origin = origin;
            Definition = d;
            RestWorldGltf = rest;
            InverseBindGltf = ibm;
            Positions = pos;
            Normals = nrm;
            Colors = col;
            PartAlong = pa;
            Triangles = tri;
            InfluenceStart = start;
            InfluenceBone = bone;
            InfluenceWeight = weight;
        }

        /// <summary>Reads a body .glb; errors name the file and what is wrong with it.</summary>
        public static BodyGlb Load(byte[] bytes, string origin)
        {
            GlbDocument g = GlbDocument.Parse(bytes, origin);
            BodyDefinition d;
            try
            {
                JsonValue extras = g.Json.Get("extras");
                d = BodyDefinition.Parse(extras == null ? null : extras.Get("posebridge"), origin);
            }
            catch (BodyException e)
            {
                throw new GlbException(e.Message);
            }
            JsonValue skin = g.Item("skins", 0);
            JsonValue jointList = g.Require(skin, "skins[0]", "joints");
            int nBones = jointList.Count;
            if (nBones != d.Bones.Length) throw new GlbException(origin + ": skins[0] has " + nBones + " joints, extras.posebridge.bones lists " + d.Bones.Length);
            var jointNode = new int[nBones];
            var nodeJoint = new Dictionary<int, int>();
            for (int j = 0; j < nBones; j++)
            {
                jointNode[j] = (int)jointList.Items[j].IntegerValue;
                nodeJoint[jointNode[j]] = j;
                string name = g.Require(g.Item("nodes", jointNode[j]), "nodes[" + jointNode[j] + "]", "name").StringValue;
                if (name != d.Bones[j]) throw new GlbException(origin + ": skin joint " + j + " is node '" + name + "', extras.posebridge.bones[" + j + "] is '" + d.Bones[j] + "'");
            }
            // Rest world transforms: the node hierarchy, parents first (the definition lists bones parents first).
            var local = new Affine[nBones];
            var parent = new int[nBones];
            for (int j = 0; j < nBones; j++) parent[j] = -1;
            for (int j = 0; j < nBones; j++)
            {
                JsonValue node = g.Item("nodes", jointNode[j]);
                local[j] = NodeTransform(node, origin + ": nodes[" + jointNode[j] + "]");
                JsonValue children = node.Get("children");
                if (children != null)
                    foreach (JsonValue c in children.Items)
                    {
                        int cj;
                        if (nodeJoint.TryGetValue((int)c.IntegerValue, out cj)) parent[cj] = j;
                    }
            }
            var rest = new Affine[nBones];
            for (int j = 0; j < nBones; j++)
            {
                if (parent[j] != d.BoneParents[j]) throw new GlbException(origin + ": bone '" + d.Bones[j] + "' hangs under joint " + parent[j] + ", the definition says " + d.BoneParents[j]);
                if (parent[j] >= j) throw new GlbException(origin + ": bones must be listed parents first");
                rest[j] = parent[j] < 0 ? local[j] : rest[parent[j]] * local[j];
            }
            int count;
            double[] m = g.ReadAccessor((int)g.Require(skin, "skins[0]", "inverseBindMatrices").IntegerValue, 16, out count);
            if (count != nBones) throw new GlbException(origin + ": skins[0].inverseBindMatrices has " + count + " matrices for " + nBones + " joints");
            var ibm = new Affine[nBones];
            for (int j = 0; j < nBones; j++) ibm[j] = Affine.FromColumnMajor(m, 16 * j);

            JsonValue prim = g.Require(g.Item("meshes", 0), "meshes[0]", "primitives").Items[0];
            JsonValue attrs = g.Require(prim, "meshes[0].primitives[0]", "attributes");
            int nv;
            double[] pos = g.ReadAccessor(Attr(g, attrs, "POSITION"), 3, out nv);
            double[] nrm = g.ReadAccessor(Attr(g, attrs, "NORMAL"), 3, out count);
            Expect(count, nv, origin, "NORMAL");
            double[] col = g.ReadAccessor(Attr(g, attrs, "COLOR_0"), 4, out count);
            Expect(count, nv, origin, "COLOR_0");
            double[] pa = g.ReadAccessor(Attr(g, attrs, "_PART_ALONG"), 2, out count);
            Expect(count, nv, origin, "_PART_ALONG");
            int nIdx;
            int width;
            double[] idx = g.ReadAccessor((int)g.Require(prim, "meshes[0].primitives[0]", "indices").IntegerValue, out width, out nIdx);
            if (width != 1 || nIdx % 3 != 0) throw new GlbException(origin + ": the indices are not a triangle list");
            var tri = new int[nIdx];
            for (int i = 0; i < nIdx; i++)
            {
                tri[i] = (int)idx[i];
                if (tri[i] < 0 || tri[i] >= nv) throw new GlbException(origin + ": index " + i + " is out of range");
            }
            // Every JOINTS_n / WEIGHTS_n set (glTFast reads only the first).
            var per = new List<KeyValuePair<int, double>>[nv];
            for (int v = 0; v < nv; v++) per[v] = new List<KeyValuePair<int, double>>(8);
            for (int set = 0; attrs.Has("JOINTS_" + set); set++)
            {
                if (!attrs.Has("WEIGHTS_" + set)) throw new GlbException(origin + ": JOINTS_" + set + " without WEIGHTS_" + set);
                double[] js = g.ReadAccessor(Attr(g, attrs, "JOINTS_" + set), 4, out count);
                Expect(count, nv, origin, "JOINTS_" + set);
                double[] ws = g.ReadAccessor(Attr(g, attrs, "WEIGHTS_" + set), 4, out count);
                Expect(count, nv, origin, "WEIGHTS_" + set);
                for (int v = 0; v < nv; v++)
                    for (int k = 0; k < 4; k++)
                    {
                        double w = ws[4 * v + k];
                        if (w <= 0) continue;
                        int b = (int)js[4 * v + k];
                        if (b >= nBones) throw new GlbException(origin + ": vertex " + v + " names joint " + b + " of " + nBones);
                        per[v].Add(new KeyValuePair<int, double>(b, w));
                    }
            }
            var start = new int[nv + 1];
            var bones = new List<int>();
            var weights = new List<double>();
            for (int v = 0; v < nv; v++)
            {
                if (per[v].Count == 0) throw new GlbException(origin + ": vertex " + v + " has no skinning weight");
                per[v].Sort((a, b) => b.Value.CompareTo(a.Value));
                start[v] = bones.Count;
                foreach (KeyValuePair<int, double> e in per[v])
                {
                    bones.Add(e.Key);
                    weights.Add(e.Value);
                }
            }
            start[nv] = bones.Count;
            return new BodyGlb(origin, d, rest, ibm, pos, nrm, col, pa, tri, start, bones.ToArray(), weights.ToArray());
        }

        static int Attr(GlbDocument g, JsonValue attrs, string name)
        {
            return (int)g.Require(attrs, "meshes[0].primitives[0].attributes", name).IntegerValue;
        }

        static void Expect(int count, int vertices, string origin, string what)
        {
            if (count != vertices) throw new GlbException(origin + ": " + what + " has " + count + " elements for " + vertices + " vertices");
        }

        static Vec3 V3(JsonValue a, double x, double y, double z)
        {
            return a == null ? new Vec3(x, y, z) : new Vec3(a.Items[0].NumberValue, a.Items[1].NumberValue, a.Items[2].NumberValue);
        }

        static Affine NodeTransform(JsonValue node, string where)
        {
            JsonValue matrix = node.Get("matrix");
            if (matrix != null)
            {
                var m = new double[16];
                for (int i = 0; i < 16; i++) m[i] = matrix.Items[i].NumberValue;
                try
                {
                    return Affine.FromColumnMajor(m, 0);
                }
                catch (ArgumentException e)
                {
                    throw new GlbException(where + ".matrix: " + e.Message);
                }
            }
            JsonValue r = node.Get("rotation");
            Quat q = r == null ? Quat.Identity : new Quat(r.Items[0].NumberValue, r.Items[1].NumberValue, r.Items[2].NumberValue, r.Items[3].NumberValue);
            return Affine.FromTrs(V3(node.Get("translation"), 0, 0, 0), q, V3(node.Get("scale"), 1, 1, 1));
        }

        public Vec3 PositionGltf(int v) { return new Vec3(Positions[3 * v], Positions[3 * v + 1], Positions[3 * v + 2]); }

        // ------------------------------------------------------------------------------------------
        // Our world frame (mm): the rig for retargeting

        static Vec3 WorldMm(Vec3 gltf) { return BodyAxes.WorldFromGltf * gltf * UnityFrames.MetresToMm; }

        /// <summary>Rest bone heads in our world frame (mm).</summary>
        public Vec3[] RestBoneHeadsMm()
        {
            var h = new Vec3[BoneCount];
            for (int b = 0; b < h.Length; b++) h[b] = WorldMm(RestWorldGltf[b].T);
            return h;
        }

        /// <summary>A vertex's (bone, weight) pairs, largest first.</summary>
        public KeyValuePair<int, double>[] Influences(int v)
        {
            var r = new KeyValuePair<int, double>[InfluenceStart[v + 1] - InfluenceStart[v]];
            for (int k = 0; k < r.Length; k++) r[k] = new KeyValuePair<int, double>(InfluenceBone[InfluenceStart[v] + k], InfluenceWeight[InfluenceStart[v] + k]);
            return r;
        }

        /// <summary>The retargeting rig of this body, from the file alone (our world, mm).</summary>
        public BodyRig Rig()
        {
            var positions = new Dictionary<int, Vec3>();
            var weights = new Dictionary<int, KeyValuePair<int, double>[]>();
            foreach (int v in Definition.LandmarkVertices())
            {
                if (v >= VertexCount) throw new GlbException(Origin + ": landmark vertex " + v + " is out of range");
                positions[v] = WorldMm(PositionGltf(v));
                weights[v] = Influences(v);
            }
            return BodyRig.Build(Definition, RestBoneHeadsMm(), positions, weights);
        }

        // ------------------------------------------------------------------------------------------
        // Unity import space: what glTFast makes of the file (x mirrored), metres

        /// <summary>Bone b's rest transform in the imported body's root space.</summary>
        public Affine ImportRest(int b) { return RestWorldGltf[b].Conjugated(BodyAxes.ImportFromGltf); }

        /// <summary>Bone b's bind pose (Unity's Mesh.bindposes entry): the mirrored inverse bind matrix.</summary>
        public Affine ImportBindpose(int b) { return InverseBindGltf[b].Conjugated(BodyAxes.ImportFromGltf); }

        public Vec3 ImportVertex(int v) { return BodyAxes.ImportFromGltf * PositionGltf(v); }

        /// <summary>
        /// Every bone's Unity world transform for a pose: the segment's Unity motion (SegmentPose.UnityMotion)
        /// times the bone's rest transform in the imported body's root space. This is what the player
        /// writes into the bones' Transforms.
        /// </summary>
        public Affine[] UnityBoneTransforms(SegmentPose pose, Affine[] importRest)
        {
            int nSeg = pose.Q.Length;
            var motion = new Affine[nSeg];
            for (int s = 0; s < nSeg; s++)
            {
                Mat3 m;
                Vec3 c;
                pose.UnityMotion(s, out m, out c);
                motion[s] = new Affine(m, c);
            }
            var out_ = new Affine[BoneCount];
            for (int b = 0; b < out_.Length; b++) out_[b] = motion[Definition.SegmentOfBone[b]] * importRest[b];
            return out_;
        }

        /// <summary>Unity's skinning of vertex v: the sum over its bones of weight * localToWorld * bindpose * vertex.</summary>
        public Vec3 SkinUnity(int v, Affine[] boneLocalToWorld, Affine[] bindposes, Vec3 vertexImport)
        {
            Vec3 sum = Vec3.Zero;
            for (int k = InfluenceStart[v]; k < InfluenceStart[v + 1]; k++)
            {
                int b = InfluenceBone[k];
                sum = sum + InfluenceWeight[k] * boneLocalToWorld[b].Apply(bindposes[b].Apply(vertexImport));
            }
            return sum;
        }

        /// <summary>
        /// The h36m17 joints in Unity's world frame (m) of the body as its bones stand: bone heads are the
        /// bones' positions, landmark vertices are skinned like the renderer skins them.
        /// </summary>
        public Vec3[] JointsUnity(Affine[] boneLocalToWorld, Affine[] bindposes)
        {
            return Definition.Joints(b => boneLocalToWorld[b].T, v => SkinUnity(v, boneLocalToWorld, bindposes, ImportVertex(v)));
        }
    }
}
