// Unity's frames -> the project's frames (docs/conventions.md, "Unity frames").
//
// Unity world: left-handed, y up, metres.          Our world: right-handed, z up, millimetres.
// Unity camera (Transform): x right, y up, z forward.  OpenCV camera: x right, y down, z forward, mm.
using System;

namespace PoseBridge.Core
{
    public static class UnityFrames
    {
        public const double MetresToMm = 1000.0;

        /// <summary>A: Unity world axes -> our world axes, (x, y, z) -> (x, z, y). det = -1 flips handedness.</summary>
        public static readonly Mat3 UnityToWorldAxes = new Mat3(1, 0, 0, 0, 0, 1, 0, 1, 0);

        /// <summary>S: Unity camera axes -> OpenCV camera axes, (x, y, z) -> (x, -y, z). det = -1.</summary>
        public static readonly Mat3 UnityCameraToOpenCv = Mat3.Diagonal(1, -1, 1);

        /// <summary>A Unity world point (m) in our world frame (mm): 1000 * A * p.</summary>
        public static Vec3 UnityToWorldMm(Vec3 pUnity) { return UnityToWorldAxes * pUnity * MetresToMm; }

        /// <summary>Unity world points (m), e.g. a rig's joints, in our world frame (mm).</summary>
        public static Vec3[] UnityToWorldMm(Vec3[] pointsUnity)
        {
            var world = new Vec3[pointsUnity.Length];
            for (int j = 0; j < world.Length; j++) world[j] = UnityToWorldMm(pointsUnity[j]);
            return world;
        }

        /// <summary>Our world point (mm) in Unity's world frame (m): A * p / 1000 (A is its own inverse).</summary>
        public static Vec3 WorldMmToUnity(Vec3 pWorldMm) { return UnityToWorldAxes * pWorldMm / MetresToMm; }

        /// <summary>A Unity direction (unit-free) in our world frame.</summary>
        public static Vec3 UnityDirectionToWorld(Vec3 dUnity) { return UnityToWorldAxes * dUnity; }

        /// <summary>
        /// World->camera extrinsics in our conventions for a Unity camera at <paramref name="cameraPosition"/>
        /// (m) with rotation <paramref name="cameraRotation"/>: R = S Q^T A, t = -1000 S Q^T c.
        /// X_cam = R X_world + t maps our world (mm) to the OpenCV camera frame (mm).
        /// </summary>
        public static void CameraExtrinsics(Vec3 cameraPosition, Quat cameraRotation, out Mat3 R, out Vec3 t)
        {
            Mat3 qt = cameraRotation.ToMatrix().Transposed;
            Mat3 sqt = UnityCameraToOpenCv * qt;
            R = sqt * UnityToWorldAxes;
            t = -(sqt * cameraPosition) * MetresToMm;
        }

        /// <summary>The inverse of <see cref="CameraExtrinsics"/>: the Unity camera pose for (R, t).</summary>
        public static void CameraPose(Mat3 R, Vec3 t, out Vec3 cameraPosition, out Quat cameraRotation)
        {
            // Q = A R^T S (from R = S Q^T A, with A, S their own inverses).
            cameraPosition = WorldMmToUnity(CameraPoses.Center(R, t));
            cameraRotation = Quat.FromMatrix(UnityToWorldAxes * R.Transposed * UnityCameraToOpenCv);
        }

        /// <summary>A Unity world point (m) in the OpenCV camera frame (mm) of a Unity camera.</summary>
        public static Vec3 UnityPointToCameraMm(Vec3 pUnity, Vec3 cameraPosition, Quat cameraRotation)
        {
            Vec3 local = cameraRotation.ToMatrix().Transposed * (pUnity - cameraPosition);
            return UnityCameraToOpenCv * local * MetresToMm;
        }
    }

    /// <summary>Camera placement in our world frame, the C# twin of generator/camera.py look_at.</summary>
    public static class CameraPoses
    {
        public static readonly Vec3 WorldUp = new Vec3(0, 0, 1);

        /// <summary>
        /// World->camera (R, t) of an OpenCV camera at <paramref name="position"/> looking at
        /// <paramref name="target"/> (mm), rolled by <paramref name="rollRad"/> about its optical axis.
        /// </summary>
        public static void LookAt(Vec3 position, Vec3 target, double rollRad, out Mat3 R, out Vec3 t)
        {
            Vec3 z = (target - position).Normalized;
            Vec3 x = Vec3.Cross(z, WorldUp);
            if (!(x.Norm > 1e-12)) throw new ArgumentException("look_at: the viewing direction is parallel to the world up axis");
            x = x.Normalized;
            Vec3 y = Vec3.Cross(z, x);
            double c = Math.Cos(rollRad), s = Math.Sin(rollRad);
            Vec3 xr = c * x + s * y;
            Vec3 yr = -s * x + c * y;
            R = Mat3.FromRows(xr, yr, z);
            t = -(R * position);
        }

        /// <summary>X_cam = R X_world + t.</summary>
        public static Vec3 WorldToCamera(Mat3 R, Vec3 t, Vec3 pWorld) { return R * pWorld + t; }

        /// <summary>The camera centre -R^T t.</summary>
        public static Vec3 Center(Mat3 R, Vec3 t) { return -(R.Transposed * t); }
    }
}
