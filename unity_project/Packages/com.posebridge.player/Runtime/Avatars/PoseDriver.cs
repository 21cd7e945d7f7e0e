// Poses a Humanoid rig for a frame: a random time in one of the player's AnimationClips (played
// through a manually evaluated PlayableGraph, so Humanoid clips retarget), or h36m17 joints sent by
// Python (bones aimed at the joints; bone lengths stay the rig's own; the posebridge body uses the
// built-in player's retargeting, AnnyBody.ApplyJoints). Ground truth is always read back from the
// posed bones, so it matches what is rendered.
using System.Collections.Generic;
using PoseBridge.Core;
using UnityEngine;
using UnityEngine.Animations;
using UnityEngine.Playables;

namespace PoseBridge.Runtime
{
    public sealed class PoseDriver : System.IDisposable
    {
        readonly HumanoidRig rig;
        readonly List<AnimationClip> clips;
        PlayableGraph graph;
        AnimationClipPlayable playable;
        int playing = -1;

        public PoseDriver(HumanoidRig rig, List<AnimationClip> clips)
        {
            this.rig = rig;
            this.clips = clips ?? new List<AnimationClip>();
        }

        public int ClipCount => clips.Count;

        /// <summary>Samples a random time of a random clip; the source names the clip and its frame.</summary>
        public PoseSource ApplyClip(FrameRng rng)
        {
            int index = rng.NextInt(clips.Count);
            AnimationClip clip = clips[index];
            if (index != playing)
            {
                if (graph.IsValid()) graph.Destroy();
                playable = AnimationPlayableUtilities.PlayClip(rig.animator, clip, out graph);
                graph.SetTimeUpdateMode(DirectorUpdateMode.Manual);
                playing = index;
            }
            double time = rng.NextDouble() * clip.length;
            playable.SetTime(time);
            graph.Evaluate();
            long frame = (long)System.Math.Floor(time * clip.frameRate);
            return PoseSource.FromClip(clip.name, frame, "unity", clip.name);
        }

        /// <summary>Aims the rig's bones at 17 world joints (our frame, mm), root first.</summary>
        public void ApplyJoints(Vec3[] jointsWorldMm)
        {
            if (graph.IsValid())
            {
                graph.Destroy();
                playing = -1;
            }
            if (rig.body != null)
            {
                rig.body.ApplyJoints(jointsWorldMm); // posebridge's retargeting, exactly as the built-in player poses the body
                return;
            }
            var j = new Vector3[jointsWorldMm.Length];
            for (int i = 0; i < j.Length; i++) j[i] = UnityConversions.WorldMmToUnity(jointsWorldMm[i]);

            // Pelvis: orientation from the hip line and the trunk, then position.
            Transform hips = rig.Bone(HumanBones.Hips);
            Transform lHip = rig.Bone(HumanBones.LeftUpperLeg), rHip = rig.Bone(HumanBones.RightUpperLeg);
            Transform neck = rig.Bone(HumanBones.Neck);
            if (neck == null) neck = rig.Bone(HumanBones.Head); // Neck is optional in a Humanoid
            Quaternion current = Frame(rHip.position - lHip.position, neck.position - hips.position);
            Quaternion target = Frame(j[1] - j[4], j[8] - j[0]);
            hips.rotation = target * Quaternion.Inverse(current) * hips.rotation;
            Vector3 hipMid = (lHip.position + rHip.position) / 2;
            rig.transform.position += j[0] - hipMid;

            Aim(HumanBones.Spine, neck, j[0], j[8]);
            if (rig.Bone(HumanBones.Neck) != null) Aim(HumanBones.Neck, rig.Bone(HumanBones.Head), j[8], j[9]);
            if (rig.headTop != null) Aim(HumanBones.Head, rig.headTop, j[9], j[10]);
            Aim(HumanBones.RightUpperLeg, rig.Bone(HumanBones.RightLowerLeg), j[1], j[2]);
            Aim(HumanBones.RightLowerLeg, rig.Bone(HumanBones.RightFoot), j[2], j[3]);
            Aim(HumanBones.LeftUpperLeg, rig.Bone(HumanBones.LeftLowerLeg), j[4], j[5]);
            Aim(HumanBones.LeftLowerLeg, rig.Bone(HumanBones.LeftFoot), j[5], j[6]);
            Aim(HumanBones.RightUpperArm, rig.Bone(HumanBones.RightLowerArm), j[14], j[15]);
            Aim(HumanBones.RightLowerArm, rig.Bone(HumanBones.RightHand), j[15], j[16]);
            Aim(HumanBones.LeftUpperArm, rig.Bone(HumanBones.LeftLowerArm), j[11], j[12]);
            Aim(HumanBones.LeftLowerArm, rig.Bone(HumanBones.LeftHand), j[12], j[13]);
        }

        // A rotation whose right axis is along `right` and whose up axis is `up` made orthogonal to it.
        static Quaternion Frame(Vector3 right, Vector3 up)
        {
            Vector3 forward = Vector3.Cross(right, up);
            return Quaternion.LookRotation(forward, up);
        }

        void Aim(int bone, Transform child, Vector3 from, Vector3 to)
        {
            Transform b = rig.Bone(bone);
            if (b == null || child == null) return;
            Vector3 current = child.position - b.position, wanted = to - from;
            if (current.sqrMagnitude < 1e-10f || wanted.sqrMagnitude < 1e-10f) return;
            b.rotation = Quaternion.FromToRotation(current, wanted) * b.rotation;
        }

        public void Dispose()
        {
            if (graph.IsValid()) graph.Destroy();
        }
    }
}
