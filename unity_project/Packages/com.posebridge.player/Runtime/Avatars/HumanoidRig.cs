// Any Humanoid rig (an Animator with a human Avatar): the procedural mannequin, or a user avatar
// (Mixamo, Ready Player Me, ...). Bone transforms come from Animator.GetBoneTransform; rigs without
// colliders get capsules between their bones so the ray-cast visibility test can see the body.
using System.Collections.Generic;
using PoseBridge.Core;
using UnityEngine;

namespace PoseBridge.Runtime
{
    /// <summary>Marks a collider as the surface around some h36m17 joints (bit j = joint j).</summary>
    public sealed class BodyPartTag : MonoBehaviour
    {
        public int jointMask;
    }

    public sealed class HumanoidRig : MonoBehaviour
    {
        public Animator animator;
        [Tooltip("Optional head-top bone (Mixamo: HeadTop_End); found by name when empty.")]
        public Transform headTop;
        [Tooltip("Set for the posebridge body (AnnyBody): its joints and poses follow posebridge's definitions.")]
        public AnnyBody body;
        [Tooltip("Renderers whose colours the appearance randomizer may change, by group.")]
        public List<Renderer> skin = new List<Renderer>(), top = new List<Renderer>(), bottom = new List<Renderer>(), shoes = new List<Renderer>(), hair = new List<Renderer>();

        static readonly string[] HeadTopNames = { "HeadTop_End", "headtop_end", "Head_end", "head_end", "HeadTop" };

        // Body segments between two Humanoid bones, with the h36m17 joints whose surroundings they form
        // (a ray to one of those joints ignores the segment: it starts inside it). Used for rigs without
        // colliders, and by the procedural mannequin.
        public struct Segment
        {
            public int From, To, JointMask;

            public Segment(int from, int to, params int[] joints)
            {
                From = from;
                To = to;
                JointMask = 0;
                foreach (int j in joints) JointMask |= 1 << j;
            }
        }

        public static readonly Segment[] Segments =
        {
            new Segment(HumanBones.RightUpperLeg, HumanBones.RightLowerLeg, 0, 1, 2),
            new Segment(HumanBones.RightLowerLeg, HumanBones.RightFoot, 2, 3),
            new Segment(HumanBones.LeftUpperLeg, HumanBones.LeftLowerLeg, 0, 4, 5),
            new Segment(HumanBones.LeftLowerLeg, HumanBones.LeftFoot, 5, 6),
            new Segment(HumanBones.RightUpperArm, HumanBones.RightLowerArm, 14, 15),
            new Segment(HumanBones.RightLowerArm, HumanBones.RightHand, 15, 16),
            new Segment(HumanBones.LeftUpperArm, HumanBones.LeftLowerArm, 11, 12),
            new Segment(HumanBones.LeftLowerArm, HumanBones.LeftHand, 12, 13),
            new Segment(HumanBones.Hips, HumanBones.Spine, 0, 1, 4, 7),
            new Segment(HumanBones.Spine, HumanBones.Neck, 7, 8, 11, 14),
            new Segment(HumanBones.Neck, HumanBones.Head, 8, 9),
        };

        public bool IsValid => animator != null && animator.isHuman && animator.avatar != null && animator.avatar.isValid;

        public Transform Bone(int humanBodyBone) => animator.GetBoneTransform((HumanBodyBones)humanBodyBone);

        public void Initialize()
        {
            if (animator == null) animator = GetComponentInChildren<Animator>();
            if (!IsValid) throw new System.InvalidOperationException(name + ": not a Humanoid rig (an Animator with a valid human Avatar is required)");
            if (headTop == null)
            {
                Transform head = Bone(HumanBones.Head);
                foreach (string n in HeadTopNames)
                {
                    headTop = FindDeep(head, n);
                    if (headTop != null) break;
                }
            }
            if (GetComponentsInChildren<Collider>().Length == 0) AddSegmentColliders();
        }

        static Transform FindDeep(Transform root, string childName)
        {
            foreach (Transform t in root.GetComponentsInChildren<Transform>())
                if (t.name == childName) return t;
            return null;
        }

        /// <summary>The h36m17 joints in Unity's world frame (m), from the current bone transforms.</summary>
        public Vec3[] JointsUnity()
        {
            if (body != null) return body.JointsUnity(); // the body's own h36m17 definitions (bone heads, landmark vertices)
            var bones = new Vec3?[HumanBones.LastBone];
            for (int b = 0; b < HumanBones.LastBone; b++)
            {
                Transform t = Bone(b);
                if (t != null) bones[b] = t.position.ToCore();
            }
            Transform head = Bone(HumanBones.Head);
            Vec3? top = headTop != null ? headTop.position.ToCore() : (Vec3?)null;
            return H36m.FromBones(bones, head.up.ToCore(), head.forward.ToCore(), top);
        }

        void AddSegmentColliders()
        {
            foreach (Segment seg in Segments)
            {
                Transform a = Bone(seg.From), b = Bone(seg.To);
                if (a == null && seg.From == HumanBones.Neck) a = Bone(HumanBones.Spine);
                if (b == null && seg.To == HumanBones.Neck) b = Bone(HumanBones.Head);
                if (a == null || b == null || a == b) continue;
                AddCapsule(a, a.position, b.position, Mathf.Clamp(Vector3.Distance(a.position, b.position) * 0.18f, 0.03f, 0.15f), seg.JointMask);
            }
            Transform head = Bone(HumanBones.Head);
            var sphere = new GameObject("collider_head");
            sphere.transform.SetParent(head, false);
            sphere.transform.localPosition = Vector3.up * 0.09f;
            sphere.AddComponent<SphereCollider>().radius = 0.1f;
            sphere.AddComponent<BodyPartTag>().jointMask = (1 << 9) | (1 << 10);
        }

        /// <summary>A capsule collider from a to b (world), parented to <paramref name="parent"/>.</summary>
        public static CapsuleCollider AddCapsule(Transform parent, Vector3 a, Vector3 b, float radius, int jointMask)
        {
            var go = new GameObject("collider_" + parent.name);
            go.transform.SetParent(parent, true);
            go.transform.position = (a + b) / 2;
            go.transform.rotation = Quaternion.FromToRotation(Vector3.up, b - a);
            var capsule = go.AddComponent<CapsuleCollider>();
            capsule.direction = 1;
            capsule.height = Vector3.Distance(a, b) + 2 * radius;
            capsule.radius = radius;
            go.AddComponent<BodyPartTag>().jointMask = jointMask;
            return capsule;
        }
    }
}
