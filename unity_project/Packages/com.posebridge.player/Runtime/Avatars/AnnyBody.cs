// The posebridge human body (Anny, MakeHuman CC0 assets) in Unity: a .glb written by
// `posebridge export-body`, imported through glTFast, set up as a Humanoid, posed from h36m17 joints
// with the same retargeting as the built-in player (PoseBridge.Core.Retarget), and labelled with the
// same h36m17 definitions (bone heads and landmark vertices, PoseBridge.Core.BodyDefinition).
//
// glTFast builds the hierarchy (one GameObject per bone, named like Anny's bones) and the
// SkinnedMeshRenderer. The mesh is then rebuilt from the file by the engine-free core: glTFast keeps
// only the first joint/weight set (4 influences) and the body needs up to 9 for exact skinning, and
// the core's copy is the one the tests check against Python (tests/test_body_gltf.py).
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using GLTFast;
using PoseBridge.Core;
using Unity.Collections;
using UnityEngine;
using UnityEngine.Rendering;

namespace PoseBridge.Runtime
{
    public sealed class AnnyBody : MonoBehaviour
    {
        // Submeshes by clothing group, in the order AppearanceRandomizer paints them.
        public const int Skin = 0, Hair = 1, Top = 2, Bottom = 3, Shoes = 4, GroupCount = 5;

        static readonly Dictionary<string, int> PartGroup = new Dictionary<string, int>
        {
            { "head", Skin }, { "eye", Skin }, { "neck", Skin }, { "forearm", Skin }, { "hand", Skin }, { "shin", Skin },
            { "hair", Hair }, { "torso", Top }, { "upperarm", Top }, { "pelvis", Bottom }, { "thigh", Bottom }, { "foot", Shoes },
        };

        static readonly int ColorId = Shader.PropertyToID("_Color");
        static readonly int BaseColorId = Shader.PropertyToID("_BaseColor");

        public string Origin { get; private set; }
        public BodyGlb Data { get; private set; }
        public BodyRig Rig { get; private set; }
        public HumanoidRig Humanoid { get; private set; }
        public SkinnedMeshRenderer SkinRenderer { get; private set; }

        Transform[] bones;
        Affine[] importRest; // each bone's rest transform in this object's space (glTFast's layout)
        Affine[] bindposes;
        GltfImport gltf;
        readonly MaterialPropertyBlock block = new MaterialPropertyBlock();

        /// <summary>Loads a body .glb under <paramref name="parent"/>: glTFast import, mesh with every weight, Humanoid Avatar.</summary>
        public static async Task<AnnyBody> LoadAsync(string path, Transform parent, Material material)
        {
            byte[] bytes = File.ReadAllBytes(path);
            BodyGlb data = BodyGlb.Load(bytes, path); // a clear error naming the file when it is not a posebridge body
            var go = new GameObject("PoseBridgeBody_" + Path.GetFileNameWithoutExtension(path));
            go.transform.SetParent(parent, false);
            var import = new GltfImport();
            if (!await import.LoadGltfBinary(bytes, new Uri(Path.GetFullPath(path))))
                throw new InvalidOperationException(path + ": glTFast could not load the file");
            if (!await import.InstantiateMainSceneAsync(go.transform))
                throw new InvalidOperationException(path + ": glTFast could not instantiate the body");
            AnnyBody body = go.AddComponent<AnnyBody>();
            body.Setup(path, data, import, material);
            return body;
        }

        void Setup(string origin, BodyGlb data, GltfImport import, Material material)
        {
            Origin = origin;
            Data = data;
            gltf = import;
            BodyDefinition d = data.Definition;
            var byName = new Dictionary<string, Transform>();
            foreach (Transform t in GetComponentsInChildren<Transform>(true))
                if (!byName.ContainsKey(t.name)) byName[t.name] = t;
            bones = new Transform[d.Bones.Length];
            importRest = new Affine[bones.Length];
            bindposes = new Affine[bones.Length];
            for (int b = 0; b < bones.Length; b++)
            {
                if (!byName.TryGetValue(d.Bones[b], out bones[b]))
                    throw new InvalidOperationException(origin + ": glTFast made no GameObject for bone '" + d.Bones[b] + "'");
                importRest[b] = data.ImportRest(b);
                bindposes[b] = data.ImportBindpose(b);
                // The core's idea of glTFast's layout (glTF with x mirrored) must be what glTFast did.
                Vector3 at = transform.InverseTransformPoint(bones[b].position);
                if ((at.ToCore() - importRest[b].T).Norm > 1e-4)
                    throw new InvalidOperationException(origin + ": glTFast put bone '" + d.Bones[b] + "' at " + at + ", expected " + importRest[b].T + " (did glTFast change its axis conversion?)");
            }
            Rig = data.Rig();

            SkinRenderer = GetComponentInChildren<SkinnedMeshRenderer>(true);
            if (SkinRenderer == null) throw new InvalidOperationException(origin + ": glTFast made no SkinnedMeshRenderer");
            SkinRenderer.sharedMesh = BuildMesh(data, bindposes);
            SkinRenderer.bones = bones;
            SkinRenderer.rootBone = bones[0];
            SkinRenderer.updateWhenOffscreen = true; // the bones move far from the import bounds
            SkinRenderer.quality = SkinQuality.Auto;
            var materials = new Material[GroupCount];
            for (int g = 0; g < GroupCount; g++) materials[g] = material;
            SkinRenderer.sharedMaterials = materials;

            Humanoid = BuildHumanoid(d);
        }

        /// <summary>The body's mesh in glTFast's layout, split into clothing groups, with all of its bone weights.</summary>
        static Mesh BuildMesh(BodyGlb data, Affine[] bindposes)
        {
            int nv = data.VertexCount;
            var vertices = new Vector3[nv];
            var normals = new Vector3[nv];
            var colors = new Color32[nv];
            var partAlong = new Vector2[nv];
            var group = new int[nv];
            for (int v = 0; v < nv; v++)
            {
                vertices[v] = data.ImportVertex(v).ToUnity();
                normals[v] = (BodyAxes.ImportFromGltf * new Vec3(data.Normals[3 * v], data.Normals[3 * v + 1], data.Normals[3 * v + 2])).ToUnity();
                colors[v] = new Color32((byte)Math.Round(255 * data.Colors[4 * v]), (byte)Math.Round(255 * data.Colors[4 * v + 1]),
                    (byte)Math.Round(255 * data.Colors[4 * v + 2]), 255);
                partAlong[v] = new Vector2((float)data.PartAlong[2 * v], (float)data.PartAlong[2 * v + 1]);
                int part = (int)data.PartAlong[2 * v];
                int g;
                group[v] = part >= 0 && part < data.Definition.PartNames.Length && PartGroup.TryGetValue(data.Definition.PartNames[part], out g) ? g : Skin;
            }
            var triangles = new List<int>[GroupCount];
            for (int g = 0; g < GroupCount; g++) triangles[g] = new List<int>();
            int[] tri = data.Triangles;
            for (int f = 0; f < tri.Length / 3; f++)
            {
                // Mirroring x turns glTF's counter-clockwise triangles around: swap two corners.
                List<int> list = triangles[group[tri[3 * f]]];
                list.Add(tri[3 * f]);
                list.Add(tri[3 * f + 2]);
                list.Add(tri[3 * f + 1]);
            }
            var mesh = new Mesh { name = "posebridge-body", indexFormat = nv > 65535 ? IndexFormat.UInt32 : IndexFormat.UInt16 };
            mesh.SetVertices(vertices);
            mesh.SetNormals(normals);
            mesh.SetColors(colors);
            mesh.SetUVs(1, partAlong);
            mesh.subMeshCount = GroupCount;
            for (int g = 0; g < GroupCount; g++) mesh.SetTriangles(triangles[g], g);
            using (var perVertex = new NativeArray<byte>(nv, Allocator.Temp))
            using (var weights = new NativeArray<BoneWeight1>(data.InfluenceBone.Length, Allocator.Temp))
            {
                var pv = perVertex;
                var w = weights;
                for (int v = 0; v < nv; v++)
                {
                    pv[v] = (byte)(data.InfluenceStart[v + 1] - data.InfluenceStart[v]);
                    for (int k = data.InfluenceStart[v]; k < data.InfluenceStart[v + 1]; k++)
                        w[k] = new BoneWeight1 { boneIndex = data.InfluenceBone[k], weight = (float)data.InfluenceWeight[k] };
                }
                mesh.SetBoneWeights(perVertex, weights); // largest first per vertex, as Unity requires
            }
            var bp = new Matrix4x4[bindposes.Length];
            for (int b = 0; b < bp.Length; b++) bp[b] = bindposes[b].ToUnityMatrix();
            mesh.bindposes = bp;
            mesh.RecalculateBounds();
            return mesh;
        }

        /// <summary>A Humanoid Avatar from the definition's bone map (extras.posebridge.humanoid), and the rig around it.</summary>
        HumanoidRig BuildHumanoid(BodyDefinition d)
        {
            var human = new List<HumanBone>();
            foreach (KeyValuePair<string, int> m in d.Humanoid)
            {
                HumanBodyBones hb;
                if (!Enum.TryParse(m.Key, out hb)) throw new InvalidOperationException(Origin + ": extras.posebridge.humanoid." + m.Key + " is not a HumanBodyBones name");
                human.Add(new HumanBone { humanName = HumanTrait.BoneName[(int)hb], boneName = d.Bones[m.Value], limit = new HumanLimit { useDefaultValues = true } });
            }
            var skeleton = new List<SkeletonBone>();
            foreach (Transform t in GetComponentsInChildren<Transform>(true))
                skeleton.Add(new SkeletonBone { name = t.name, position = t.localPosition, rotation = t.localRotation, scale = t.localScale });
            var description = new HumanDescription
            {
                human = human.ToArray(),
                skeleton = skeleton.ToArray(),
                upperArmTwist = 0.5f, lowerArmTwist = 0.5f, upperLegTwist = 0.5f, lowerLegTwist = 0.5f,
                armStretch = 0.05f, legStretch = 0.05f, feetSpacing = 0f, hasTranslationDoF = false,
            };
            Avatar avatar = AvatarBuilder.BuildHumanAvatar(gameObject, description);
            if (!avatar.isValid) throw new InvalidOperationException(Origin + ": AvatarBuilder rejected the body's Humanoid bone map");
            avatar.name = name + "_Avatar";
            var animator = gameObject.AddComponent<Animator>();
            animator.avatar = avatar;
            animator.applyRootMotion = false;
            var rig = gameObject.AddComponent<HumanoidRig>();
            rig.animator = animator;
            rig.body = this;
            rig.headTop = null; // the head joint comes from the body's landmarks, not a head-top bone
            return rig;
        }

        /// <summary>Poses the body on 17 world joints (our frame, mm) with posebridge's retargeting.</summary>
        public void ApplyJoints(Vec3[] jointsWorldMm)
        {
            SegmentPose pose = Retarget.PoseBody(Rig, jointsWorldMm);
            Affine[] world = Data.UnityBoneTransforms(pose, importRest);
            for (int b = 0; b < bones.Length; b++) // parents first: each bone's world transform is set outright
                bones[b].SetPositionAndRotation(world[b].T.ToUnity(), Quat.FromMatrix(world[b].L).ToUnity());
        }

        /// <summary>
        /// The h36m17 joints in Unity's world frame (m) as the body stands now (posed by joints, a clip or
        /// anything else): bone heads, and landmark vertices skinned as the renderer skins them.
        /// </summary>
        public Vec3[] JointsUnity()
        {
            var l2w = new Affine[bones.Length];
            for (int b = 0; b < bones.Length; b++) l2w[b] = bones[b].localToWorldMatrix.ToCoreAffine();
            return Data.JointsUnity(l2w, bindposes);
        }

        /// <summary>Colours of the clothing groups (skin, hair, top, bottom, shoes) through property blocks.</summary>
        public void Paint(Color skin, Color hair, Color top, Color bottom, Color shoes)
        {
            Color[] byGroup = { skin, hair, top, bottom, shoes };
            for (int g = 0; g < GroupCount; g++)
            {
                SkinRenderer.GetPropertyBlock(block, g);
                block.SetColor(ColorId, byGroup[g]);
                block.SetColor(BaseColorId, byGroup[g]);
                SkinRenderer.SetPropertyBlock(block, g);
            }
        }

        void OnDestroy()
        {
            if (gltf != null) gltf.Dispose();
        }
    }
}
