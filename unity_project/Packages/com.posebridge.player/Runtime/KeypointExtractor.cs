// Ground truth for a frame: the rig's h36m17 joints (HumanoidRig.JointsUnity), converted to our
// frames by the core, projected with the core's K, R, t; and a visibility state per joint from ray
// casts between the camera and the joint: 0 outside the image, 1 occluded (by an occluder or another
// body part), 2 visible. The colliders around a joint itself (BodyPartTag) do not count: the joint
// lies inside them.
using PoseBridge.Core;
using UnityEngine;

namespace PoseBridge.Runtime
{
    public sealed class KeypointExtractor
    {
        readonly RaycastHit[] hits = new RaycastHit[32];

        /// <summary>Occlusion per joint; joints outside the image are not tested.</summary>
        public bool[] Occluded(Vector3 cameraPosition, Vec3[] jointsUnity, bool[] inImage)
        {
            Physics.SyncTransforms();
            var occluded = new bool[jointsUnity.Length];
            for (int j = 0; j < jointsUnity.Length; j++)
            {
                if (!inImage[j]) continue;
                Vector3 d = jointsUnity[j].ToUnity() - cameraPosition;
                float distance = d.magnitude;
                int n = Physics.RaycastNonAlloc(cameraPosition, d / distance, hits, distance - 0.005f, Physics.DefaultRaycastLayers, QueryTriggerInteraction.Ignore);
                for (int k = 0; k < n && !occluded[j]; k++)
                {
                    BodyPartTag tag = hits[k].collider.GetComponent<BodyPartTag>();
                    occluded[j] = tag == null || (tag.jointMask & (1 << j)) == 0;
                }
            }
            return occluded;
        }

        /// <summary>Every keypoint field of the protocol header for the rig under the camera (R, t, K).</summary>
        public FrameGroundTruth Compute(HumanoidRig rig, Vector3 cameraPosition, SampledCamera cam, double baselineMm, out int[] visibility)
        {
            Vec3[] unity = rig.JointsUnity();
            FrameGroundTruth g = FrameGroundTruth.Compute(UnityFrames.UnityToWorldMm(unity), cam.R, cam.T, cam.K, cam.Width, cam.Height, baselineMm);
            visibility = g.Visibility(Occluded(cameraPosition, unity, g.InImage));
            return g;
        }
    }
}
