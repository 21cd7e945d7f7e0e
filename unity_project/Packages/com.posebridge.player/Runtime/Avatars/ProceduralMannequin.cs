// A mannequin built from primitives at run time, so the project needs no third-party assets. It is a
// real Humanoid: its bones get a human Avatar from AvatarBuilder, so AnimationClips retarget onto it
// exactly as onto a Mixamo or Ready Player Me character.
using System.Collections.Generic;
using PoseBridge.Core;
using UnityEngine;

namespace PoseBridge.Runtime
{
    public static class ProceduralMannequin
    {
        struct BoneSpec
        {
            public int Bone;
            public int Parent; // HumanBodyBones of the parent, -1 for the root (Hips)
            public Vector3 Offset; // T-pose local offset in metres (character faces +z, its right is +x)

            public BoneSpec(int bone, int parent, float x, float y, float z)
            {
                Bone = bone;
                Parent = parent;
                Offset = new Vector3(x, y, z);
            }
        }

        // A 1.75 m adult in T-pose, proportioned after Human3.6M's mean bone lengths.
        static readonly BoneSpec[] Bones =
        {
            new BoneSpec(HumanBones.Hips, -1, 0, 0.95f, 0),
            new BoneSpec(HumanBones.LeftUpperLeg, HumanBones.Hips, -0.09f, -0.06f, 0),
            new BoneSpec(HumanBones.LeftLowerLeg, HumanBones.LeftUpperLeg, 0, -0.44f, 0),
            new BoneSpec(HumanBones.LeftFoot, HumanBones.LeftLowerLeg, 0, -0.44f, 0),
            new BoneSpec(HumanBones.LeftToes, HumanBones.LeftFoot, 0, -0.05f, 0.12f),
            new BoneSpec(HumanBones.RightUpperLeg, HumanBones.Hips, 0.09f, -0.06f, 0),
            new BoneSpec(HumanBones.RightLowerLeg, HumanBones.RightUpperLeg, 0, -0.44f, 0),
            new BoneSpec(HumanBones.RightFoot, HumanBones.RightLowerLeg, 0, -0.44f, 0),
            new BoneSpec(HumanBones.RightToes, HumanBones.RightFoot, 0, -0.05f, 0.12f),
            new BoneSpec(HumanBones.Spine, HumanBones.Hips, 0, 0.11f, 0),
            new BoneSpec(HumanBones.Chest, HumanBones.Spine, 0, 0.14f, 0),
            new BoneSpec(HumanBones.Neck, HumanBones.Chest, 0, 0.24f, 0),
            new BoneSpec(HumanBones.Head, HumanBones.Neck, 0, 0.10f, 0),
            new BoneSpec(HumanBones.LeftShoulder, HumanBones.Chest, -0.04f, 0.19f, 0),
            new BoneSpec(HumanBones.LeftUpperArm, HumanBones.LeftShoulder, -0.12f, 0, 0),
            new BoneSpec(HumanBones.LeftLowerArm, HumanBones.LeftUpperArm, -0.28f, 0, 0),
            new BoneSpec(HumanBones.LeftHand, HumanBones.LeftLowerArm, -0.25f, 0, 0),
            new BoneSpec(HumanBones.RightShoulder, HumanBones.Chest, 0.04f, 0.19f, 0),
            new BoneSpec(HumanBones.RightUpperArm, HumanBones.RightShoulder, 0.12f, 0, 0),
            new BoneSpec(HumanBones.RightLowerArm, HumanBones.RightUpperArm, 0.28f, 0, 0),
            new BoneSpec(HumanBones.RightHand, HumanBones.RightLowerArm, 0.25f, 0, 0),
        };

        /// <summary>Builds the mannequin under a new root, with a human Avatar, colliders and colour groups.</summary>
        public static HumanoidRig Build(Transform parent, Material material)
        {
            var root = new GameObject("PoseBridgeMannequin");
            root.transform.SetParent(parent, false);
            var transforms = new Dictionary<int, Transform>();
            foreach (BoneSpec b in Bones)
            {
                var go = new GameObject(HumanTrait.BoneName[b.Bone]);
                go.transform.SetParent(b.Parent < 0 ? root.transform : transforms[b.Parent], false);
                go.transform.localPosition = b.Offset;
                transforms[b.Bone] = go.transform;
            }
            var headTop = new GameObject("HeadTop_End").transform;
            headTop.SetParent(transforms[HumanBones.Head], false);
            headTop.localPosition = new Vector3(0, 0.19f, 0);

            // Build the Avatar from the bare skeleton, before the meshes are added.
            var human = new List<HumanBone>();
            foreach (BoneSpec b in Bones)
                human.Add(new HumanBone { boneName = HumanTrait.BoneName[b.Bone], humanName = HumanTrait.BoneName[b.Bone], limit = new HumanLimit { useDefaultValues = true } });
            var skeleton = new List<SkeletonBone>();
            foreach (Transform t in root.GetComponentsInChildren<Transform>())
                skeleton.Add(new SkeletonBone { name = t.name, position = t.localPosition, rotation = t.localRotation, scale = t.localScale });
            var description = new HumanDescription
            {
                human = human.ToArray(),
                skeleton = skeleton.ToArray(),
                upperArmTwist = 0.5f, lowerArmTwist = 0.5f, upperLegTwist = 0.5f, lowerLegTwist = 0.5f,
                armStretch = 0.05f, legStretch = 0.05f, feetSpacing = 0f, hasTranslationDoF = false,
            };
            Avatar avatar = AvatarBuilder.BuildHumanAvatar(root, description);
            if (!avatar.isValid) throw new System.InvalidOperationException("AvatarBuilder rejected the procedural mannequin");
            avatar.name = "PoseBridgeMannequinAvatar";
            var animator = root.AddComponent<Animator>();
            animator.avatar = avatar;
            animator.applyRootMotion = false;

            var rig = root.AddComponent<HumanoidRig>();
            rig.animator = animator;
            rig.headTop = headTop;
            AddBody(rig, transforms, material);
            rig.Initialize();
            return rig;
        }

        static void AddBody(HumanoidRig rig, Dictionary<int, Transform> t, Material material)
        {
            // Limbs: one capsule per Humanoid segment, radius by segment, coloured by clothing group.
            Limb(rig.bottom, t[HumanBones.LeftUpperLeg], t[HumanBones.LeftLowerLeg], 0.075f, 0, 4, 5);
            Limb(rig.bottom, t[HumanBones.RightUpperLeg], t[HumanBones.RightLowerLeg], 0.075f, 0, 1, 2);
            Limb(rig.skin, t[HumanBones.LeftLowerLeg], t[HumanBones.LeftFoot], 0.055f, 5, 6);
            Limb(rig.skin, t[HumanBones.RightLowerLeg], t[HumanBones.RightFoot], 0.055f, 2, 3);
            Limb(rig.shoes, t[HumanBones.LeftFoot], t[HumanBones.LeftToes], 0.045f, 6);
            Limb(rig.shoes, t[HumanBones.RightFoot], t[HumanBones.RightToes], 0.045f, 3);
            Limb(rig.top, t[HumanBones.Hips], t[HumanBones.Neck], 0.15f, 0, 1, 4, 7, 8, 11, 14);
            Limb(rig.skin, t[HumanBones.Neck], t[HumanBones.Head], 0.05f, 8, 9);
            Limb(rig.top, t[HumanBones.LeftUpperArm], t[HumanBones.LeftLowerArm], 0.05f, 11, 12);
            Limb(rig.top, t[HumanBones.RightUpperArm], t[HumanBones.RightLowerArm], 0.05f, 14, 15);
            Limb(rig.skin, t[HumanBones.LeftLowerArm], t[HumanBones.LeftHand], 0.04f, 12, 13);
            Limb(rig.skin, t[HumanBones.RightLowerArm], t[HumanBones.RightHand], 0.04f, 15, 16);
            Ball(rig.skin, t[HumanBones.LeftHand], new Vector3(-0.06f, 0, 0), 0.05f, 13);
            Ball(rig.skin, t[HumanBones.RightHand], new Vector3(0.06f, 0, 0), 0.05f, 16);
            Ball(rig.skin, t[HumanBones.Head], new Vector3(0, 0.09f, 0.01f), 0.11f, 9, 10);
            Ball(rig.hair, t[HumanBones.Head], new Vector3(0, 0.13f, -0.01f), 0.105f, 10);
            foreach (Renderer r in rig.GetComponentsInChildren<Renderer>()) r.sharedMaterial = material;
        }

        static int Mask(int[] joints)
        {
            int m = 0;
            foreach (int j in joints) m |= 1 << j;
            return m;
        }

        static void Limb(List<Renderer> group, Transform from, Transform to, float radius, params int[] joints)
        {
            var go = GameObject.CreatePrimitive(PrimitiveType.Capsule);
            go.name = "mesh_" + from.name;
            go.transform.SetParent(from, false);
            Vector3 d = to.position - from.position;
            go.transform.position = from.position + d / 2;
            go.transform.rotation = Quaternion.FromToRotation(Vector3.up, d);
            // The unit capsule is 2 tall with radius 0.5: cover the segment plus a cap at each end.
            go.transform.localScale = new Vector3(2 * radius, d.magnitude / 2 + radius, 2 * radius);
            go.AddComponent<BodyPartTag>().jointMask = Mask(joints);
            group.Add(go.GetComponent<Renderer>());
        }

        static void Ball(List<Renderer> group, Transform bone, Vector3 offset, float radius, params int[] joints)
        {
            var go = GameObject.CreatePrimitive(PrimitiveType.Sphere);
            go.name = "mesh_ball_" + bone.name + "_" + group.Count;
            go.transform.SetParent(bone, false);
            go.transform.localPosition = offset;
            go.transform.localScale = Vector3.one * (2 * radius);
            go.AddComponent<BodyPartTag>().jointMask = Mask(joints);
            group.Add(go.GetComponent<Renderer>());
        }
    }
}
