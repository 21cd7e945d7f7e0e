// UnityEngine types <-> the engine-free core's doubles.
using PoseBridge.Core;
using UnityEngine;

namespace PoseBridge.Runtime
{
    public static class UnityConversions
    {
        public static Vec3 ToCore(this Vector3 v) => new Vec3(v.x, v.y, v.z);

        public static Quat ToCore(this Quaternion q) => new Quat(q.x, q.y, q.z, q.w);

        public static Vector3 ToUnity(this Vec3 v) => new Vector3((float)v.X, (float)v.Y, (float)v.Z);

        public static Quaternion ToUnity(this Quat q) => new Quaternion((float)q.X, (float)q.Y, (float)q.Z, (float)q.W);

        /// <summary>A Unity 4x4 transform (affine: last row 0 0 0 1) as the core's Affine.</summary>
        public static Affine ToCoreAffine(this Matrix4x4 m) =>
            new Affine(new Mat3(m.m00, m.m01, m.m02, m.m10, m.m11, m.m12, m.m20, m.m21, m.m22), new Vec3(m.m03, m.m13, m.m23));

        public static Matrix4x4 ToUnityMatrix(this Affine a)
        {
            var m = Matrix4x4.identity;
            m.m00 = (float)a.L.M00; m.m01 = (float)a.L.M01; m.m02 = (float)a.L.M02; m.m03 = (float)a.T.X;
            m.m10 = (float)a.L.M10; m.m11 = (float)a.L.M11; m.m12 = (float)a.L.M12; m.m13 = (float)a.T.Y;
            m.m20 = (float)a.L.M20; m.m21 = (float)a.L.M21; m.m22 = (float)a.L.M22; m.m23 = (float)a.T.Z;
            return m;
        }

        /// <summary>A world joint in our frame (mm, z up) as a Unity world position (m, y up).</summary>
        public static Vector3 WorldMmToUnity(Vec3 p) => UnityFrames.WorldMmToUnity(p).ToUnity();
    }
}
