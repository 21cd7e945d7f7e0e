// The h36m17 skeleton (docs/conventions.md) and its mapping from Unity's Humanoid bones.
using System;

namespace PoseBridge.Core
{
    /// <summary>UnityEngine.HumanBodyBones values, so that the engine-free core can name bones.</summary>
    public static class HumanBones
    {
        public const int Hips = 0;
        public const int LeftUpperLeg = 1;
        public const int RightUpperLeg = 2;
        public const int LeftLowerLeg = 3;
        public const int RightLowerLeg = 4;
        public const int LeftFoot = 5;
        public const int RightFoot = 6;
        public const int Spine = 7;
        public const int Chest = 8;
        public const int Neck = 9;
        public const int Head = 10;
        public const int LeftShoulder = 11;
        public const int RightShoulder = 12;
        public const int LeftUpperArm = 13;
        public const int RightUpperArm = 14;
        public const int LeftLowerArm = 15;
        public const int RightLowerArm = 16;
        public const int LeftHand = 17;
        public const int RightHand = 18;
        public const int LeftToes = 19;
        public const int RightToes = 20;
        public const int UpperChest = 54;
        public const int LastBone = 55;

        /// <summary>Bones every Unity Humanoid avatar has (the mandatory ones the mapping reads).</summary>
        public static readonly int[] Required =
        {
            Hips, LeftUpperLeg, RightUpperLeg, LeftLowerLeg, RightLowerLeg, LeftFoot, RightFoot, Spine, Head,
            LeftUpperArm, RightUpperArm, LeftLowerArm, RightLowerArm, LeftHand, RightHand,
        };
    }

    /// <summary>h36m17: names, parents, and the joints computed from Humanoid bone positions.</summary>
    public static class H36m
    {
        public const string SkeletonName = "h36m17";
        public const int NumJoints = 17;

        public static readonly string[] JointNames =
        {
            "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
            "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
        };

        public static readonly int[] Parents = { -1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15 };

        /// <summary>The Humanoid bone read directly for each joint; -1 marks a derived joint.</summary>
        public static readonly int[] DirectBone =
        {
            -1, HumanBones.RightUpperLeg, HumanBones.RightLowerLeg, HumanBones.RightFoot,
            HumanBones.LeftUpperLeg, HumanBones.LeftLowerLeg, HumanBones.LeftFoot,
            -1, -1, -1, -1,
            HumanBones.LeftUpperArm, HumanBones.LeftLowerArm, HumanBones.LeftHand,
            HumanBones.RightUpperArm, HumanBones.RightLowerArm, HumanBones.RightHand,
        };

        // Head landmarks in units of the neck length L = |Head bone - Thorax| (a Humanoid rig has no
        // nose or head-top bone): Neck/Nose = Head + L (NoseUp up + NoseForward forward), the head top =
        // Head + HeadTopUp L up. Chosen so that, for a 100-110 mm neck, the two head bones come out within
        // about 10% of Human3.6M's means (Thorax-Neck/Nose 116 mm, Neck/Nose-Head 115 mm); a rig with a
        // head-top bone (Mixamo's HeadTop_End) passes it instead.
        public const double NoseUp = 0.05;
        public const double NoseForward = 0.4;
        public const double HeadTopUp = 1.0;

        /// <summary>
        /// h36m17 joints from Humanoid bone positions (indexed by HumanBodyBones; null = bone absent),
        /// all in one frame: Hip = mid-point of the upper legs; Thorax = the Neck bone, or the mid-point
        /// of the upper arms when the rig has no neck; Spine = mid-point of Hip and Thorax; Neck/Nose and
        /// Head from the Head bone and its up/forward axes (see NoseUp, NoseForward, HeadTopUp), or from
        /// <paramref name="headTop"/> when the rig has a head-top bone.
        /// </summary>
        public static Vec3[] FromBones(Vec3?[] bones, Vec3 headUp, Vec3 headForward, Vec3? headTop)
        {
            if (bones == null || bones.Length < HumanBones.LastBone)
                throw new ArgumentException("bones must be indexed by HumanBodyBones (length >= " + HumanBones.LastBone + ")");
            foreach (int b in HumanBones.Required)
            {
                if (!bones[b].HasValue) throw new ArgumentException("Humanoid bone " + b + " is missing; the rig is not a complete Humanoid");
                if (!bones[b].Value.IsFinite) throw new ArgumentException("Humanoid bone " + b + " has a non-finite position");
            }
            var j = new Vec3[NumJoints];
            for (int i = 0; i < NumJoints; i++)
                if (DirectBone[i] >= 0) j[i] = bones[DirectBone[i]].Value;

            j[0] = Vec3.Lerp(j[1], j[4], 0.5);
            j[8] = bones[HumanBones.Neck].HasValue ? bones[HumanBones.Neck].Value : Vec3.Lerp(j[11], j[14], 0.5);
            j[7] = Vec3.Lerp(j[0], j[8], 0.5);
            Vec3 head = bones[HumanBones.Head].Value;
            Vec3 up = headUp.Normalized, forward = headForward.Normalized;
            double neck = (head - j[8]).Norm;
            j[9] = head + neck * (NoseUp * up + NoseForward * forward);
            j[10] = headTop.HasValue ? headTop.Value : head + (HeadTopUp * neck) * up;
            return j;
        }
    }
}
