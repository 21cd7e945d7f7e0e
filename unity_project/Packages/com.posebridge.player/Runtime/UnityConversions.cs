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

        /// <summary>A world joint in our frame (mm, z up) as a Unity world position (m, y up).</summary>
        public static Vector3 WorldMmToUnity(Vec3 p) => UnityFrames.WorldMmToUnity(p).ToUnity();
    }
}
