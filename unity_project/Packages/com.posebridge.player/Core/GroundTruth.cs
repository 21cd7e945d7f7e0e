// Ground truth of one frame from world joints and a camera: the protocol's joints_3d, joints_2d,
// joints_2d_right and visibility, with the formulas of generator/camera.py (project_points,
// right_view_points, in_image). The occlusion test (depth buffer or ray cast) is the engine's part.
namespace PoseBridge.Core
{
    public sealed class FrameGroundTruth
    {
        public Vec3[] JointsWorld;       // our world frame, mm
        public Vec3[] JointsCamera;      // OpenCV camera frame, mm
        public double[][] Joints2d;      // pixels
        public double[][] Joints2dRight; // pixels, the camera moved baseline_mm along its +x
        public bool[] InImage;           // 0 <= u < W, 0 <= v < H, z > 0

        /// <summary>Projects world joints (mm) with world->camera (R, t) and K into a W x H image.</summary>
        public static FrameGroundTruth Compute(Vec3[] jointsWorld, Mat3 R, Vec3 t, Intrinsics k, int width, int height, double baselineMm)
        {
            int n = jointsWorld.Length;
            var g = new FrameGroundTruth
            {
                JointsWorld = jointsWorld,
                JointsCamera = new Vec3[n],
                Joints2d = new double[n][],
                Joints2dRight = new double[n][],
                InImage = new bool[n],
            };
            for (int j = 0; j < n; j++)
            {
                Vec3 c = R * jointsWorld[j] + t;
                g.JointsCamera[j] = c;
                double u, v, ur, vr;
                bool front = k.Project(c, out u, out v);
                k.Project(new Vec3(c.X - baselineMm, c.Y, c.Z), out ur, out vr);
                g.Joints2d[j] = new[] { u, v };
                g.Joints2dRight[j] = new[] { ur, vr };
                g.InImage[j] = front && u >= 0 && u < width && v >= 0 && v < height;
            }
            return g;
        }

        /// <summary>Fraction of joints inside the image (the camera sampler's rejection rule).</summary>
        public double InFrameFraction
        {
            get
            {
                int c = 0;
                foreach (bool b in InImage) if (b) c++;
                return InImage.Length == 0 ? 0 : (double)c / InImage.Length;
            }
        }

        /// <summary>0 outside the image, else 1 where the engine's test says occluded, 2 where visible.</summary>
        public int[] Visibility(bool[] occluded)
        {
            var vis = new int[InImage.Length];
            for (int j = 0; j < vis.Length; j++) vis[j] = !InImage[j] ? 0 : (occluded != null && occluded[j] ? 1 : 2);
            return vis;
        }
    }
}
