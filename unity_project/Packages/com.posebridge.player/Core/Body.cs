// The posebridge human body (Anny, exported by `posebridge export-body`): its definition (segments,
// h36m17 joints on the body, Humanoid bone map), the rest rig that retargeting needs, and the
// retargeting itself, a line-by-line port of generator/body/rig.py pose_body so that Unity poses the
// body exactly as the built-in player does (tests/test_unity_core.py compares the numbers).
//
// Frames: the rig and poses live in our world frame (mm, z up, right-handed); the rest body faces -y
// there. A SegmentPose moves a rest point x of segment s to Q[s] x + T[s].
using System;
using System.Collections.Generic;

namespace PoseBridge.Core
{
    public sealed class BodyException : Exception
    {
        public BodyException(string message) : base(message) { }
    }

    /// <summary>extras.posebridge of a body .glb (generator/body/gltf.py body_definition).</summary>
    public sealed class BodyDefinition
    {
        public const string Format = "posebridge-body";
        public const int Version = 1;

        public string[] Bones;
        public int[] BoneParents;
        public string[] SegmentNames;
        public int[] SegmentParents; // -1 for the root segment
        public int[] SegmentPivotBones;
        public int[] SegmentOfBone;
        public int[][] JointBones = new int[H36m.NumJoints][]; // bone indices whose heads each joint averages
        public int[][] JointLandmarks = new int[H36m.NumJoints][]; // vertex indices it averages
        public string[] PartNames;
        public readonly List<KeyValuePair<string, int>> Humanoid = new List<KeyValuePair<string, int>>(); // HumanBodyBones name -> bone
        public readonly Dictionary<string, double> Phenotype = new Dictionary<string, double>();

        public int SegmentCount { get { return SegmentNames.Length; } }

        public int Bone(string name)
        {
            int i = Array.IndexOf(Bones, name);
            if (i < 0) throw new BodyException("the body has no bone '" + name + "'");
            return i;
        }

        public int Segment(string name)
        {
            int i = Array.IndexOf(SegmentNames, name);
            if (i < 0) throw new BodyException("the body has no segment '" + name + "'");
            return i;
        }

        /// <summary>Reads and checks the definition; errors name <paramref name="origin"/> and the key.</summary>
        public static BodyDefinition Parse(JsonValue v, string origin)
        {
            string o = origin + ": extras.posebridge";
            if (v == null || v.Kind != JsonKind.Object) throw new BodyException(origin + ": no extras.posebridge body definition (export the body with `posebridge export-body`)");
            if (Str(v, "format", o) != Format) throw new BodyException(o + ".format: expected '" + Format + "'");
            long version = Req(v, "version", o).IntegerValue;
            if (version != Version) throw new BodyException(o + ".version: " + version + ", this reader knows " + Version);
            var d = new BodyDefinition();
            d.Bones = Strings(Req(v, "bones", o), o + ".bones");
            d.BoneParents = Ints(Req(v, "bone_parents", o), o + ".bone_parents", -1, d.Bones.Length - 1);
            if (d.BoneParents.Length != d.Bones.Length) throw new BodyException(o + ".bone_parents: needs one entry per bone");
            JsonValue segs = Req(v, "segments", o);
            int n = segs.Count;
            d.SegmentNames = new string[n];
            d.SegmentParents = new int[n];
            d.SegmentPivotBones = new int[n];
            for (int s = 0; s < n; s++) d.SegmentNames[s] = Str(segs.Items[s], "name", o + ".segments[" + s + "]");
            for (int s = 0; s < n; s++)
            {
                string where = o + ".segments[" + s + "]";
                JsonValue p = segs.Items[s].Get("parent"); // absent or null for the root segment
                bool root = p == null || p.Kind == JsonKind.Null;
                d.SegmentParents[s] = root ? -1 : Array.IndexOf(d.SegmentNames, p.StringValue);
                if (!root && (d.SegmentParents[s] < 0 || d.SegmentParents[s] >= s))
                    throw new BodyException(where + ".parent: '" + p.StringValue + "' is not an earlier segment");
                d.SegmentPivotBones[s] = Array.IndexOf(d.Bones, Str(segs.Items[s], "pivot_bone", where));
                if (d.SegmentPivotBones[s] < 0) throw new BodyException(where + ".pivot_bone: not a bone of the body");
            }
            d.SegmentOfBone = Ints(Req(v, "segment_of_bone", o), o + ".segment_of_bone", 0, n - 1);
            if (d.SegmentOfBone.Length != d.Bones.Length) throw new BodyException(o + ".segment_of_bone: needs one entry per bone");
            JsonValue joints = Req(v, "h36m17", o);
            if (joints.Count != H36m.NumJoints) throw new BodyException(o + ".h36m17: needs " + H36m.NumJoints + " joints");
            for (int j = 0; j < H36m.NumJoints; j++)
            {
                string where = o + ".h36m17[" + j + "]";
                JsonValue e = joints.Items[j];
                if (Str(e, "name", where) != H36m.JointNames[j]) throw new BodyException(where + ".name: expected '" + H36m.JointNames[j] + "' (h36m17 order)");
                // An empty list may be left out (pygltflib drops empty lists when it writes a file).
                string[] bones = e.Has("bones") ? Strings(e.Get("bones"), where + ".bones") : new string[0];
                d.JointBones[j] = new int[bones.Length];
                for (int k = 0; k < bones.Length; k++)
                {
                    d.JointBones[j][k] = Array.IndexOf(d.Bones, bones[k]);
                    if (d.JointBones[j][k] < 0) throw new BodyException(where + ".bones[" + k + "]: '" + bones[k] + "' is not a bone of the body");
                }
                d.JointLandmarks[j] = e.Has("landmarks") ? Ints(e.Get("landmarks"), where + ".landmarks", 0, int.MaxValue) : new int[0];
                if (bones.Length + d.JointLandmarks[j].Length == 0) throw new BodyException(where + ": names no bone and no landmark");
            }
            JsonValue parts = Req(v, "parts", o);
            d.PartNames = new string[parts.Count];
            for (int p = 0; p < parts.Count; p++) d.PartNames[p] = Str(parts.Items[p], "name", o + ".parts[" + p + "]");
            foreach (KeyValuePair<string, JsonValue> m in Req(v, "humanoid", o).Members)
            {
                int b = Array.IndexOf(d.Bones, m.Value.StringValue);
                if (b < 0) throw new BodyException(o + ".humanoid." + m.Key + ": '" + m.Value.StringValue + "' is not a bone of the body");
                d.Humanoid.Add(new KeyValuePair<string, int>(m.Key, b));
            }
            JsonValue ph = v.Get("phenotype");
            if (ph != null) foreach (KeyValuePair<string, JsonValue> m in ph.Members) d.Phenotype[m.Key] = m.Value.NumberValue;
            return d;
        }

        /// <summary>
        /// The h36m17 joints of a posed body from its bone heads and landmark vertices, in whatever
        /// frame those are given: each joint is the mean of its bones' heads and its landmarks.
        /// </summary>
        public Vec3[] Joints(Func<int, Vec3> boneHead, Func<int, Vec3> landmark)
        {
            var j = new Vec3[H36m.NumJoints];
            for (int i = 0; i < H36m.NumJoints; i++)
            {
                Vec3 sum = Vec3.Zero;
                foreach (int b in JointBones[i]) sum = sum + boneHead(b);
                foreach (int v in JointLandmarks[i]) sum = sum + landmark(v);
                j[i] = sum / (JointBones[i].Length + JointLandmarks[i].Length);
            }
            return j;
        }

        /// <summary>Every landmark vertex the joints use, in increasing order.</summary>
        public int[] LandmarkVertices()
        {
            var set = new SortedSet<int>();
            foreach (int[] l in JointLandmarks) foreach (int v in l) set.Add(v);
            return new List<int>(set).ToArray();
        }

        static JsonValue Req(JsonValue v, string key, string where)
        {
            JsonValue m = v.Get(key);
            if (m == null) throw new BodyException(where + "." + key + " is missing");
            return m;
        }

        static string Str(JsonValue v, string key, string where)
        {
            JsonValue m = Req(v, key, where);
            if (m.Kind != JsonKind.String) throw new BodyException(where + "." + key + ": must be a string");
            return m.StringValue;
        }

        static string[] Strings(JsonValue a, string where)
        {
            if (a.Kind != JsonKind.Array) throw new BodyException(where + ": must be an array");
            var s = new string[a.Count];
            for (int i = 0; i < s.Length; i++)
            {
                if (a.Items[i].Kind != JsonKind.String) throw new BodyException(where + "[" + i + "]: must be a string");
                s[i] = a.Items[i].StringValue;
            }
            return s;
        }

        static int[] Ints(JsonValue a, string where, int low, int high)
        {
            if (a.Kind != JsonKind.Array) throw new BodyException(where + ": must be an array");
            var r = new int[a.Count];
            for (int i = 0; i < r.Length; i++)
            {
                JsonValue x = a.Items[i];
                if (x.Kind != JsonKind.Number || !x.IsInteger || x.IntegerValue < low || x.IntegerValue > high)
                    throw new BodyException(where + "[" + i + "]: must be an integer in [" + low + ", " + high + "]");
                r[i] = (int)x.IntegerValue;
            }
            return r;
        }
    }

    /// <summary>Where each segment goes: rest point x of segment s moves to Q[s] x + T[s] (our world, mm).</summary>
    public sealed class SegmentPose
    {
        public readonly Mat3[] Q;
        public readonly Vec3[] T;

        public SegmentPose(Mat3[] q, Vec3[] t)
        {
            Q = q;
            T = t;
        }

        public Vec3 Apply(int segment, Vec3 x) { return Q[segment] * x + T[segment]; }

        /// <summary>
        /// Segment <paramref name="segment"/>'s motion in Unity: a point p of the imported body's root
        /// space (metres, as glTFast lays the .glb out: glTF with x mirrored) goes to the Unity world
        /// point M p + c. M = A Q F with A the Unity/our-world axis swap and F = BodyAxes.WorldFromImport.
        /// </summary>
        public void UnityMotion(int segment, out Mat3 m, out Vec3 c)
        {
            m = UnityFrames.UnityToWorldAxes * Q[segment] * BodyAxes.WorldFromImport;
            c = UnityFrames.UnityToWorldAxes * T[segment] / UnityFrames.MetresToMm;
        }
    }

    /// <summary>The axes of an exported body (docs/conventions.md, "Body export (.glb)").</summary>
    public static class BodyAxes
    {
        /// <summary>glTF axes -> our world axes: (x, y, z)_world = (x, -z, y)_glTF (times 1000 for points).</summary>
        public static readonly Mat3 WorldFromGltf = new Mat3(1, 0, 0, 0, 0, -1, 0, 1, 0);

        /// <summary>glTFast mirrors glTF's x axis to make Unity's left-handed frame: S = diag(-1, 1, 1).</summary>
        public static readonly Mat3 ImportFromGltf = Mat3.Diagonal(-1, 1, 1);

        /// <summary>Unity import space (the body's root space in Unity) -> our world axes: WorldFromGltf S.</summary>
        public static readonly Mat3 WorldFromImport = WorldFromGltf * ImportFromGltf;
    }

    /// <summary>
    /// What retargeting needs from one body (rig.py JointRig): each segment's rest pivot, and the rest
    /// anchors (joint bones' heads, landmark vertices) with their segment weights; our world, mm.
    /// </summary>
    public sealed class BodyRig
    {
        public readonly int[] SegmentParents;
        public readonly Vec3[] Pivots;
        public readonly Vec3[] Anchors;
        public readonly double[][] AnchorWeights; // [anchor][segment], summing to 1
        public readonly int[][] JointAnchors; // [joint] -> anchors averaged
        readonly Dictionary<string, int> segmentIndex = new Dictionary<string, int>();

        public BodyRig(string[] segmentNames, int[] segmentParents, Vec3[] pivots, Vec3[] anchors, double[][] anchorWeights, int[][] jointAnchors)
        {
            if (segmentNames.Length != pivots.Length || segmentParents.Length != pivots.Length) throw new BodyException("one pivot and one parent per segment");
            if (anchorWeights.Length != anchors.Length) throw new BodyException("one weight row per anchor");
            if (jointAnchors.Length != H36m.NumJoints) throw new BodyException("needs " + H36m.NumJoints + " joints");
            for (int s = 0; s < segmentNames.Length; s++) segmentIndex[segmentNames[s]] = s;
            SegmentParents = segmentParents;
            Pivots = pivots;
            Anchors = anchors;
            AnchorWeights = anchorWeights;
            JointAnchors = jointAnchors;
        }

        public int Segment(string name)
        {
            int s;
            if (!segmentIndex.TryGetValue(name, out s)) throw new BodyException("the rig has no segment '" + name + "'");
            return s;
        }

        /// <summary>
        /// The rig of a body from its definition and rest data in our world frame (mm): bone heads
        /// (one per bone), landmark vertex positions and their bone weights (bone, weight) pairs.
        /// A bone head moves with its bone's segment; a landmark blends its bones' segments.
        /// </summary>
        public static BodyRig Build(BodyDefinition d, Vec3[] boneHeads, IDictionary<int, Vec3> landmarks, IDictionary<int, KeyValuePair<int, double>[]> landmarkWeights)
        {
            if (boneHeads.Length != d.Bones.Length) throw new BodyException("needs one head per bone (" + d.Bones.Length + "), got " + boneHeads.Length);
            int nSeg = d.SegmentCount;
            var pivots = new Vec3[nSeg];
            for (int s = 0; s < nSeg; s++) pivots[s] = boneHeads[d.SegmentPivotBones[s]];
            var anchors = new List<Vec3>();
            var weights = new List<double[]>();
            var boneAnchor = new Dictionary<int, int>();
            var vertexAnchor = new Dictionary<int, int>();
            var jointAnchors = new int[H36m.NumJoints][];
            for (int j = 0; j < H36m.NumJoints; j++)
            {
                var list = new List<int>();
                foreach (int b in d.JointBones[j])
                {
                    int a;
                    if (!boneAnchor.TryGetValue(b, out a))
                    {
                        a = anchors.Count;
                        anchors.Add(boneHeads[b]);
                        var w = new double[nSeg];
                        w[d.SegmentOfBone[b]] = 1.0;
                        weights.Add(w);
                        boneAnchor[b] = a;
                    }
                    list.Add(a);
                }
                foreach (int v in d.JointLandmarks[j])
                {
                    int a;
                    if (!vertexAnchor.TryGetValue(v, out a))
                    {
                        Vec3 p;
                        KeyValuePair<int, double>[] bw;
                        if (!landmarks.TryGetValue(v, out p) || !landmarkWeights.TryGetValue(v, out bw))
                            throw new BodyException("landmark vertex " + v + " (" + H36m.JointNames[j] + ") has no rest position or weights");
                        var w = new double[nSeg];
                        double total = 0;
                        foreach (KeyValuePair<int, double> e in bw)
                        {
                            if (e.Key < 0 || e.Key >= d.Bones.Length) throw new BodyException("landmark vertex " + v + ": bone " + e.Key + " out of range");
                            w[d.SegmentOfBone[e.Key]] += e.Value;
                            total += e.Value;
                        }
                        if (!(total > 0)) throw new BodyException("landmark vertex " + v + " has no skinning weight");
                        for (int s = 0; s < nSeg; s++) w[s] /= total;
                        a = anchors.Count;
                        anchors.Add(p);
                        weights.Add(w);
                        vertexAnchor[v] = a;
                    }
                    list.Add(a);
                }
                jointAnchors[j] = list.ToArray();
            }
            return new BodyRig(d.SegmentNames, d.SegmentParents, pivots, anchors.ToArray(), weights.ToArray(), jointAnchors);
        }

        Vec3[] JointsOf(Func<int, Vec3> anchor)
        {
            var j = new Vec3[H36m.NumJoints];
            for (int i = 0; i < j.Length; i++)
            {
                Vec3 sum = Vec3.Zero;
                foreach (int a in JointAnchors[i]) sum = sum + anchor(a);
                j[i] = sum / JointAnchors[i].Length;
            }
            return j;
        }

        public Vec3[] RestJoints() { return JointsOf(a => Anchors[a]); }

        /// <summary>The h36m17 joints (our world, mm) of the body posed by <paramref name="pose"/> (rig.py posed_joints).</summary>
        public Vec3[] PosedJoints(SegmentPose pose)
        {
            return JointsOf(a =>
            {
                Vec3 sum = Vec3.Zero;
                double[] w = AnchorWeights[a];
                for (int s = 0; s < w.Length; s++)
                    if (w[s] != 0) sum = sum + w[s] * pose.Apply(s, Anchors[a]);
                return sum;
            });
        }
    }

    /// <summary>
    /// Direction-based retargeting from h36m17 joints to the body's segments: rig.py pose_body, step
    /// for step (the same formulas and the same degenerate-case rules), so both players pose a body
    /// the same way for the same joints.
    /// </summary>
    public static class Retarget
    {
        // Below this limb bend (sine of the angle) the hinge axis of a knee or elbow comes from the rest twist.
        static readonly double HingeBendSin = Math.Sin(25.0 * Math.PI / 180.0);

        static Vec3 Unit(Vec3 v) { return v / Math.Max(v.Norm, 1e-12); }

        static Mat3 Outer3(Vec3 c0, Vec3 c1, Vec3 c2) { return Mat3.FromColumns(c0, c1, c2); }

        /// <summary>Columns lateral, up x lateral and up, orthonormalized on up (rig.py _frame).</summary>
        public static Mat3 Frame(Vec3 lateral, Vec3 up)
        {
            Vec3 z = Unit(up);
            Vec3 x = Unit(lateral - Vec3.Dot(lateral, z) * z);
            return Outer3(x, Vec3.Cross(z, x), z);
        }

        /// <summary>Rotation about a (normalized) axis by an angle in radians (Rodrigues).</summary>
        public static Mat3 AxisAngle(Vec3 axis, double angle)
        {
            Vec3 u = Unit(axis);
            var k = new Mat3(0, -u.Z, u.Y, u.Z, 0, -u.X, -u.Y, u.X, 0);
            double s = Math.Sin(angle), c = 1.0 - Math.Cos(angle);
            Mat3 kk = k * k;
            return new Mat3(
                1 + s * k.M00 + c * kk.M00, s * k.M01 + c * kk.M01, s * k.M02 + c * kk.M02,
                s * k.M10 + c * kk.M10, 1 + s * k.M11 + c * kk.M11, s * k.M12 + c * kk.M12,
                s * k.M20 + c * kk.M20, s * k.M21 + c * kk.M21, 1 + s * k.M22 + c * kk.M22);
        }

        /// <summary>The smallest rotation taking direction a to direction b (half a turn for opposite ones).</summary>
        public static Mat3 Swing(Vec3 a, Vec3 b)
        {
            a = Unit(a);
            b = Unit(b);
            Vec3 axis = Vec3.Cross(a, b);
            double s = axis.Norm, c = Vec3.Dot(a, b);
            if (s < 1e-9)
            {
                Vec3 helper = Math.Abs(a.X) < 0.9 ? new Vec3(1, 0, 0) : new Vec3(0, 1, 0);
                axis = Vec3.Cross(a, helper);
            }
            return AxisAngle(axis, s < 1e-9 && c > 0 ? 0.0 : Math.Atan2(s, c));
        }

        /// <summary>The rotation vector of a rotation (rig.py _log).</summary>
        public static Vec3 Log(Mat3 r)
        {
            double angle = Math.Acos(Math.Max(-1.0, Math.Min(1.0, (r.M00 + r.M11 + r.M22 - 1.0) / 2.0)));
            var v = new Vec3(r.M21 - r.M12, r.M02 - r.M20, r.M10 - r.M01);
            double sin = Math.Sin(angle);
            double scale = angle < 1e-9 ? 0.5 : angle / (2.0 * (sin > 1e-12 ? sin : 1.0));
            Vec3 result = v * scale;
            if (Math.PI - angle < 1e-6)
            {
                // A half turn: the axis is the column of R + I with the largest norm (the first of equals).
                Mat3 m = new Mat3(r.M00 + 1, r.M01, r.M02, r.M10, r.M11 + 1, r.M12, r.M20, r.M21, r.M22 + 1);
                int best = 0;
                for (int col = 1; col < 3; col++)
                    if (m.Column(col).Norm > m.Column(best).Norm) best = col;
                result = Unit(m.Column(best)) * angle;
            }
            return result;
        }

        /// <summary>A fraction f of the way from R0 to R1.</summary>
        public static Mat3 Slerp(Mat3 r0, Mat3 r1, double f)
        {
            Vec3 w = Log(r0.Transposed * r1);
            return r0 * AxisAngle(w, f * w.Norm);
        }

        /// <summary>Upper limbs: the direction from the target, the twist from the plane the limb bends in (rig.py _hinged).</summary>
        static Mat3 Hinged(Mat3 parentQ, Vec3 dRest, Vec3 dTarget, Vec3 hingeRest, Vec3 childTarget)
        {
            Mat3 swing = Swing(parentQ * dRest, dTarget) * parentQ;
            Vec3 fallback = swing * hingeRest;
            Vec3 bend = Vec3.Cross(Unit(dTarget), Unit(childTarget));
            double w = Math.Min(bend.Norm / HingeBendSin, 1.0);
            Vec3 hinge = w * Unit(bend) + (1.0 - w) * fallback;
            if (hinge.Norm < 0.3) hinge = fallback;
            Vec3 dt = Unit(dTarget), dr = Unit(dRest);
            Vec3 ht = Unit(hinge - Vec3.Dot(hinge, dt) * dt);
            Vec3 hr = Unit(hingeRest - Vec3.Dot(hingeRest, dr) * dr);
            Mat3 target = Outer3(dt, ht, Vec3.Cross(dt, ht));
            Mat3 rest = Outer3(dr, hr, Vec3.Cross(dr, hr));
            return target * rest.Transposed;
        }

        static int J(string name) { return Array.IndexOf(H36m.JointNames, name); }

        static Vec3 Pair(Vec3[] p, string from, string to) { return p[J(to)] - p[J(from)]; }

        /// <summary>
        /// Segment rotations that align the body's limbs with the target h36m17 joints (17, our world,
        /// mm), and translations that put the body's Hip on the target's Hip (rig.py pose_body).
        /// </summary>
        public static SegmentPose PoseBody(BodyRig rig, Vec3[] target)
        {
            if (target == null || target.Length != H36m.NumJoints) throw new ArgumentException("target needs " + H36m.NumJoints + " joints");
            foreach (Vec3 p in target)
                if (!p.IsFinite) throw new ArgumentException("target joints must be finite");
            Vec3[] b = rig.RestJoints();
            int n = rig.Pivots.Length;
            var q = new Mat3[n];
            // Level 0: the pelvis from the hips and the lower spine, the chest from the shoulders and the upper spine.
            Mat3 pelvis = Frame(Pair(target, "RHip", "LHip"), Pair(target, "Hip", "Spine")) * Frame(Pair(b, "RHip", "LHip"), Pair(b, "Hip", "Spine")).Transposed;
            Mat3 chest = Frame(Pair(target, "RShoulder", "LShoulder"), Pair(target, "Spine", "Thorax")) * Frame(Pair(b, "RShoulder", "LShoulder"), Pair(b, "Spine", "Thorax")).Transposed;
            q[rig.Segment("pelvis")] = pelvis;
            q[rig.Segment("chest")] = chest;
            // Level 1: the spine between them, the head, the thighs and upper arms.
            q[rig.Segment("spine04")] = Slerp(pelvis, chest, 0.25);
            q[rig.Segment("spine03")] = Slerp(pelvis, chest, 0.5);
            q[rig.Segment("spine02")] = Slerp(pelvis, chest, 0.75);
            Mat3 head = Swing(chest * Pair(b, "Thorax", "Head"), Pair(target, "Thorax", "Head")) * chest;
            q[rig.Segment("head")] = head;
            Vec3 lateral = Unit(Pair(b, "RHip", "LHip"));
            string[] sides = { "L", "R" };
            var limbs = new Mat3[4];
            for (int k = 0; k < 2; k++)
            {
                string s = sides[k];
                // Thigh: hip -> knee, bending in the plane of hip -> knee -> foot; its rest twist is the body's lateral axis.
                limbs[2 * k] = Hinged(pelvis, Pair(b, s + "Hip", s + "Knee"), Pair(target, s + "Hip", s + "Knee"), lateral, Pair(target, s + "Knee", s + "Foot"));
                Vec3 armHinge = Vec3.Cross(Unit(Pair(b, s + "Shoulder", s + "Elbow")), Unit(Pair(b, s + "Elbow", s + "Wrist")));
                limbs[2 * k + 1] = Hinged(chest, Pair(b, s + "Shoulder", s + "Elbow"), Pair(target, s + "Shoulder", s + "Elbow"), armHinge, Pair(target, s + "Elbow", s + "Wrist"));
                q[rig.Segment("thigh." + s)] = limbs[2 * k];
                q[rig.Segment("upperarm." + s)] = limbs[2 * k + 1];
            }
            // Level 2: the neck, the shins and forearms.
            q[rig.Segment("neck01")] = Slerp(chest, head, 1.0 / 3.0);
            q[rig.Segment("neck02")] = Slerp(chest, head, 2.0 / 3.0);
            for (int k = 0; k < 2; k++)
            {
                string s = sides[k];
                q[rig.Segment("shin." + s)] = Swing(limbs[2 * k] * Pair(b, s + "Knee", s + "Foot"), Pair(target, s + "Knee", s + "Foot")) * limbs[2 * k];
                q[rig.Segment("forearm." + s)] = Swing(limbs[2 * k + 1] * Pair(b, s + "Elbow", s + "Wrist"), Pair(target, s + "Elbow", s + "Wrist")) * limbs[2 * k + 1];
            }
            var t = new Vec3[n];
            t[0] = target[J("Hip")] - pelvis * b[J("Hip")];
            for (int k = 1; k < n; k++)
            {
                int p = rig.SegmentParents[k];
                if (p < 0 || p >= k) throw new BodyException("segments must be listed parents first, with one root");
                t[k] = t[p] + q[p] * rig.Pivots[k] - q[k] * rig.Pivots[k];
            }
            return new SegmentPose(q, t);
        }
    }
}
