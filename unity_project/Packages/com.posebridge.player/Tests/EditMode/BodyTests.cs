// EditMode tests of the body core: the .glb reader, the definition parser, the rotation helpers and
// the retargeting. The comparison with Python's pose_body on a real body is in tests/test_unity_core.py
// and tests/test_body_gltf.py (the console runner's body-vectors and body-glb commands).
using System;
using System.Collections.Generic;
using System.Text;
using NUnit.Framework;
using PoseBridge.Core;

namespace PoseBridge.Tests
{
    [TestFixture]
    public class GlbTests
    {
        static byte[] Glb(string json, byte[] bin)
        {
            byte[] j = Encoding.UTF8.GetBytes(json);
            int jLen = (j.Length + 3) / 4 * 4, bLen = (bin.Length + 3) / 4 * 4;
            var o = new byte[12 + 8 + jLen + 8 + bLen];
            Action<int, uint> put = (at, v) => Array.Copy(BitConverter.GetBytes(v), 0, o, at, 4);
            put(0, 0x46546C67);
            put(4, 2);
            put(8, (uint)o.Length);
            put(12, (uint)jLen);
            put(16, 0x4E4F534A);
            for (int i = 0; i < jLen; i++) o[20 + i] = i < j.Length ? j[i] : (byte)' ';
            put(20 + jLen, (uint)bLen);
            put(24 + jLen, 0x004E4942);
            Array.Copy(bin, 0, o, 28 + jLen, bin.Length);
            return o;
        }

        static byte[] Bin()
        {
            var b = new byte[28];
            Array.Copy(BitConverter.GetBytes(1.5f), 0, b, 0, 4);
            Array.Copy(BitConverter.GetBytes(-2f), 0, b, 4, 4);
            Array.Copy(BitConverter.GetBytes(0.25f), 0, b, 8, 4);
            Array.Copy(BitConverter.GetBytes(3f), 0, b, 12, 4);
            Array.Copy(BitConverter.GetBytes(4f), 0, b, 16, 4);
            Array.Copy(BitConverter.GetBytes(5f), 0, b, 20, 4);
            b[24] = 255;
            b[25] = 51;
            return b;
        }

        const string Json = "{\"asset\":{\"version\":\"2.0\"},\"buffers\":[{\"byteLength\":28}]," +
            "\"bufferViews\":[{\"buffer\":0,\"byteOffset\":0,\"byteLength\":24},{\"buffer\":0,\"byteOffset\":24,\"byteLength\":2}]," +
            "\"accessors\":[{\"bufferView\":0,\"componentType\":5126,\"count\":2,\"type\":\"VEC3\"}," +
            "{\"bufferView\":1,\"componentType\":5121,\"normalized\":true,\"count\":1,\"type\":\"VEC2\"}," +
            "{\"bufferView\":0,\"byteOffset\":20,\"componentType\":5126,\"count\":2,\"type\":\"VEC3\"}]}";

        [Test]
        public void ReadsFloatAndNormalizedAccessors()
        {
            GlbDocument g = GlbDocument.Parse(Glb(Json, Bin()), "tiny.glb");
            int count;
            double[] p = g.ReadAccessor(0, 3, out count);
            Assert.AreEqual(2, count);
            Assert.AreEqual(1.5, p[0], 0);
            Assert.AreEqual(-2, p[1], 0);
            Assert.AreEqual(5, p[5], 0);
            double[] c = g.ReadAccessor(1, 2, out count);
            Assert.AreEqual(1.0, c[0], 1e-12);
            Assert.AreEqual(0.2, c[1], 1e-12);
        }

        [Test]
        public void RefusesBadFilesNamingThem()
        {
            byte[] good = Glb(Json, Bin());
            var bad = (byte[])good.Clone();
            bad[0] = (byte)'x';
            Assert.IsTrue(Assert.Throws<GlbException>(() => GlbDocument.Parse(bad, "a.glb")).Message.StartsWith("a.glb: not a glTF binary file"));
            GlbDocument g = GlbDocument.Parse(good, "b.glb");
            int count;
            Assert.AreEqual("b.glb: accessors[2] reads past the binary chunk", Assert.Throws<GlbException>(() => g.ReadAccessor(2, 3, out count)).Message);
            Assert.AreEqual("b.glb: accessors[0] has 3 components per element, expected 4", Assert.Throws<GlbException>(() => g.ReadAccessor(0, 4, out count)).Message);
            Assert.IsTrue(Assert.Throws<GlbException>(() => BodyGlb.Load(good, "b.glb")).Message.Contains("no extras.posebridge"));
        }

        [Test]
        public void AffineInverseAndColumnMajorLayout()
        {
            var m = new double[] { 0, 1, 0, 0, -2, 0, 0, 0, 0, 0, 1, 0, 5, 6, 7, 1 }; // columns: x -> (0,1,0), y -> (-2,0,0)
            Affine a = Affine.FromColumnMajor(m, 0);
            Vec3 p = a.Apply(new Vec3(1, 1, 1));
            Assert.AreEqual(3, p.X, 1e-12);
            Assert.AreEqual(7, p.Y, 1e-12);
            Assert.AreEqual(8, p.Z, 1e-12);
            Vec3 back = a.Inverse.Apply(p);
            Assert.AreEqual(1, back.X, 1e-12);
            Assert.AreEqual(1, back.Y, 1e-12);
            Assert.AreEqual(1, back.Z, 1e-12);
        }
    }

    [TestFixture]
    public class RetargetTests
    {
        static readonly string[] SegmentNames =
        {
            "pelvis", "spine04", "spine03", "spine02", "chest", "neck01", "neck02", "head",
            "thigh.L", "shin.L", "thigh.R", "shin.R", "upperarm.L", "forearm.L", "upperarm.R", "forearm.R",
        };

        static readonly int[] SegmentParents = { -1, 0, 1, 2, 3, 4, 5, 6, 0, 8, 0, 10, 4, 12, 4, 14 };

        // A standing body in our world frame (mm, z up, facing -y, its left at +x): straight legs, elbows bent.
        static Vec3[] RestJoints()
        {
            return new[]
            {
                new Vec3(0, 0, 950), new Vec3(-90, 0, 950), new Vec3(-90, 0, 520), new Vec3(-90, 0, 90),
                new Vec3(90, 0, 950), new Vec3(90, 0, 520), new Vec3(90, 0, 90), new Vec3(0, 10, 1180),
                new Vec3(0, 0, 1420), new Vec3(0, -90, 1560), new Vec3(0, -10, 1680), new Vec3(180, 0, 1410),
                new Vec3(220, -40, 1130), new Vec3(200, -230, 1000), new Vec3(-180, 0, 1410), new Vec3(-220, -40, 1130),
                new Vec3(-200, -230, 1000),
            };
        }

        static BodyRig Rig()
        {
            Vec3[] joints = RestJoints();
            var weights = new double[17][];
            var anchorsOf = new int[17][];
            for (int j = 0; j < 17; j++)
            {
                weights[j] = new double[16];
                weights[j][j % 16] = 1.0; // any segment: a rigid motion moves them all alike
                anchorsOf[j] = new[] { j };
            }
            var pivots = new Vec3[16];
            for (int s = 0; s < 16; s++) pivots[s] = new Vec3(10 * s, -5 * s, 900 + 40 * s);
            return new BodyRig(SegmentNames, SegmentParents, pivots, joints, weights, anchorsOf);
        }

        static void Near(Vec3 a, Vec3 b, double tol, string what)
        {
            Assert.AreEqual(a.X, b.X, tol, what + ".x");
            Assert.AreEqual(a.Y, b.Y, tol, what + ".y");
            Assert.AreEqual(a.Z, b.Z, tol, what + ".z");
        }

        [Test]
        public void ARigidlyMovedRestPoseGivesThatMotionToEverySegment()
        {
            BodyRig rig = Rig();
            Mat3 g = Retarget.AxisAngle(new Vec3(0.3, -0.2, 1.0), 2.4);
            var offset = new Vec3(1200, -350, 80);
            Vec3[] rest = rig.RestJoints();
            var target = new Vec3[17];
            for (int j = 0; j < 17; j++) target[j] = g * rest[j] + offset;
            SegmentPose pose = Retarget.PoseBody(rig, target);
            for (int s = 0; s < 16; s++)
                for (int i = 0; i < 3; i++)
                    Near(pose.Q[s].Column(i), g.Column(i), 1e-9, SegmentNames[s] + " column " + i);
            Vec3[] posed = rig.PosedJoints(pose);
            for (int j = 0; j < 17; j++) Near(posed[j], target[j], 1e-6, H36m.JointNames[j]);
        }

        [Test]
        public void LimbsPointAlongTheTargetKeepingTheirLengths()
        {
            BodyRig rig = Rig();
            Vec3[] target = RestJoints();
            target[12] = target[11] + new Vec3(0, -280, 0); // left upper arm forward
            target[13] = target[12] + new Vec3(0, -50, 200); // forearm up
            SegmentPose pose = Retarget.PoseBody(rig, target);
            Vec3 upper = pose.Q[12] * (rig.RestJoints()[12] - rig.RestJoints()[11]);
            Vec3 dir = (target[12] - target[11]).Normalized;
            Assert.AreEqual(1.0, Vec3.Dot(upper.Normalized, dir), 1e-12);
            Assert.AreEqual((rig.RestJoints()[12] - rig.RestJoints()[11]).Norm, upper.Norm, 1e-9);
            Vec3 fore = pose.Q[13] * (rig.RestJoints()[13] - rig.RestJoints()[12]);
            Assert.AreEqual(1.0, Vec3.Dot(fore.Normalized, (target[13] - target[12]).Normalized), 1e-12);
        }

        [Test]
        public void RotationHelpers()
        {
            var a = new Vec3(1, 2, -0.5);
            var b = new Vec3(-3, 0.5, 2);
            Assert.AreEqual(1.0, Vec3.Dot((Retarget.Swing(a, b) * a).Normalized, b.Normalized), 1e-12);
            Mat3 half = Retarget.Swing(a, -1 * a); // opposite directions: half a turn
            Assert.AreEqual(-1.0, Vec3.Dot((half * a).Normalized, a.Normalized), 1e-12);
            Vec3 w = Retarget.Log(Retarget.AxisAngle(new Vec3(0, 0.6, 0.8), 2.0));
            Near(w, new Vec3(0, 1.2, 1.6), 1e-12, "log");
            Vec3 h = Retarget.Log(Retarget.AxisAngle(new Vec3(0, 0.6, 0.8), Math.PI));
            Assert.AreEqual(Math.PI, h.Norm, 1e-9);
            Assert.AreEqual(1.0, Math.Abs(Vec3.Dot(h.Normalized, new Vec3(0, 0.6, 0.8))), 1e-9);
            Mat3 mid = Retarget.Slerp(Mat3.Identity, Retarget.AxisAngle(new Vec3(1, 0, 0), 1.0), 0.25);
            Near(Retarget.Log(mid), new Vec3(0.25, 0, 0), 1e-12, "slerp");
        }

        [Test]
        public void UnityMotionMovesImportedPointsLikeTheWorldPose()
        {
            // A point of the imported body (Unity root space, m) and the same point in our world frame (mm)
            // must land on the same spot: Unity world -> our world of the first equals the pose of the second.
            Mat3 q = Retarget.AxisAngle(new Vec3(0.2, 1, -0.4), 0.9);
            var pose = new SegmentPose(new[] { q }, new[] { new Vec3(100, -200, 900) });
            var pImport = new Vec3(0.12, 1.31, -0.05);
            Vec3 pWorld = BodyAxes.WorldFromImport * pImport * 1000;
            Mat3 m;
            Vec3 c;
            pose.UnityMotion(0, out m, out c);
            Near(UnityFrames.UnityToWorldMm(m * pImport + c), pose.Apply(0, pWorld), 1e-9, "posed point");
            Assert.AreEqual(1.0, m.Determinant, 1e-12);
        }

        [Test]
        public void DefinitionErrorsNameTheKey()
        {
            JsonValue v = JsonValue.Parse("{\"format\":\"posebridge-body\",\"version\":1}");
            Assert.AreEqual("x.glb: extras.posebridge.bones is missing", Assert.Throws<BodyException>(() => BodyDefinition.Parse(v, "x.glb")).Message);
            JsonValue w = JsonValue.Parse("{\"format\":\"posebridge-body\",\"version\":7}");
            Assert.AreEqual("x.glb: extras.posebridge.version: 7, this reader knows 1", Assert.Throws<BodyException>(() => BodyDefinition.Parse(w, "x.glb")).Message);
        }
    }
}
