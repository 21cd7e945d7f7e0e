// EditMode tests for the engine-free core. Unity runs them in the Test Runner; the console runner
// (unity_project/ConsoleRunner) compiles the same file with mcs and runs it in CI here.
using System;
using NUnit.Framework;
using PoseBridge.Core;

namespace PoseBridge.Tests
{
    [TestFixture]
    public class IntrinsicsTests
    {
        const double Eps = 1e-9;

        [Test]
        public void VerticalFovGivesSquarePixelsAtTheImageCentre()
        {
            // 90 degrees over 100 rows: f = 50 / tan(45) = 50.
            Intrinsics k = Intrinsics.FromVerticalFov(90, 200, 100);
            Assert.AreEqual(50, k.Fx, Eps);
            Assert.AreEqual(50, k.Fy, Eps);
            Assert.AreEqual(100, k.Cx, Eps);
            Assert.AreEqual(50, k.Cy, Eps);
        }

        [Test]
        public void PhysicalCameraGateFits()
        {
            // 50 mm lens, 36 x 24 mm sensor, 1920 x 1080: vertical fit 45 px/mm, horizontal 53.33 px/mm.
            Intrinsics v = Intrinsics.FromPhysical(50, 36, 24, 0, 0, GateFit.Vertical, 1920, 1080);
            Assert.AreEqual(2250, v.Fx, Eps);
            Assert.AreEqual(2250, v.Fy, Eps);
            Intrinsics h = Intrinsics.FromPhysical(50, 36, 24, 0, 0, GateFit.Horizontal, 1920, 1080);
            Assert.AreEqual(50 * 1920 / 36.0, h.Fy, Eps);
            // The sensor (1.5) is narrower than the image (1.78): Fill fits horizontally, Overscan vertically.
            Assert.AreEqual(h.Fx, Intrinsics.FromPhysical(50, 36, 24, 0, 0, GateFit.Fill, 1920, 1080).Fx, Eps);
            Assert.AreEqual(v.Fx, Intrinsics.FromPhysical(50, 36, 24, 0, 0, GateFit.Overscan, 1920, 1080).Fx, Eps);
            Intrinsics n = Intrinsics.FromPhysical(50, 36, 24, 0, 0, GateFit.None, 1920, 1080);
            Assert.AreEqual(h.Fx, n.Fx, Eps);
            Assert.AreEqual(v.Fy, n.Fy, Eps);
        }

        [Test]
        public void LensShiftMovesThePrincipalPoint()
        {
            // A +x shift looks right (the axis lands left of centre); a +y shift looks up (the axis lands lower).
            Intrinsics k = Intrinsics.FromPhysical(50, 36, 24, 0.1, 0.2, GateFit.None, 1920, 1080);
            Assert.AreEqual(960 - 0.1 * 1920, k.Cx, Eps);
            Assert.AreEqual(540 + 0.2 * 1080, k.Cy, Eps);
        }

        [Test]
        public void PhysicalCameraReproducesAnyIntrinsics()
        {
            var k = new Intrinsics(812.5, 799.0, 301.25, 255.5);
            PhysicalCamera p = PhysicalCamera.FromIntrinsics(k, 640, 480, 24);
            Intrinsics back = p.ToIntrinsics(640, 480);
            Assert.AreEqual(k.Fx, back.Fx, 1e-9);
            Assert.AreEqual(k.Fy, back.Fy, 1e-9);
            Assert.AreEqual(k.Cx, back.Cx, 1e-9);
            Assert.AreEqual(k.Cy, back.Cy, 1e-9);
        }

        [Test]
        public void LongSideFovMatchesTheConfigConvention()
        {
            // 90 degrees across the 1920-px side: f = 960.
            Assert.AreEqual(960, Intrinsics.FocalFromLongSideFov(90, 1920, 1080), 1e-9);
            Assert.AreEqual(960, Intrinsics.FocalFromLongSideFov(90, 1080, 1920), 1e-9);
            Assert.AreEqual(2 * Math.Atan(540.0 / 960) * 180 / Math.PI, Intrinsics.VerticalFovDeg(960, 1080), 1e-9);
        }
    }

    [TestFixture]
    public class UnityFramesTests
    {
        [Test]
        public void WorldAxesSwapYAndZAndScaleToMillimetres()
        {
            Vec3 w = UnityFrames.UnityToWorldMm(new Vec3(1, 2, 3));
            Assert.AreEqual(1000, w.X, 1e-9);
            Assert.AreEqual(3000, w.Y, 1e-9);
            Assert.AreEqual(2000, w.Z, 1e-9);
            Assert.AreEqual(-1, UnityFrames.UnityToWorldAxes.Determinant, 1e-12);
        }

        [Test]
        public void CameraLookingAlongUnityForward()
        {
            // Camera at Unity (0, 1.5, -4), identity rotation; point (1, 2, 0) is 1 m right, 0.5 m up, 4 m ahead.
            Mat3 r;
            Vec3 t;
            UnityFrames.CameraExtrinsics(new Vec3(0, 1.5, -4), Quat.Identity, out r, out t);
            Vec3 c = r * UnityFrames.UnityToWorldMm(new Vec3(1, 2, 0)) + t;
            Assert.AreEqual(1000, c.X, 1e-9);
            Assert.AreEqual(-500, c.Y, 1e-9);
            Assert.AreEqual(4000, c.Z, 1e-9);
            Assert.AreEqual(1, r.Determinant, 1e-12);
            Vec3 direct = UnityFrames.UnityPointToCameraMm(new Vec3(1, 2, 0), new Vec3(0, 1.5, -4), Quat.Identity);
            Assert.AreEqual(c.Y, direct.Y, 1e-9);
        }

        [Test]
        public void PitchedDownCameraSeesItsAxisPointAtThePrincipalPoint()
        {
            // Euler x = +30 pitches Unity's camera down; from height 2 m the axis meets y = 2 - 5 tan 30 at z = 0.
            Quat q = Quat.Euler(30, 0, 0);
            Vec3 onAxis = new Vec3(0, 2 - 5 * Math.Tan(Math.PI / 6), 0);
            Vec3 c = UnityFrames.UnityPointToCameraMm(onAxis, new Vec3(0, 2, -5), q);
            Assert.AreEqual(0, c.X, 1e-9);
            Assert.AreEqual(0, c.Y, 1e-9);
            Assert.AreEqual(5000 / Math.Cos(Math.PI / 6), c.Z, 1e-9);
        }

        [Test]
        public void YawNinetyFacesUnityRight()
        {
            Vec3 f = Quat.Euler(0, 90, 0).Rotate(new Vec3(0, 0, 1));
            Assert.AreEqual(1, f.X, 1e-12);
            Assert.AreEqual(0, f.Z, 1e-12);
        }

        [Test]
        public void CameraPoseInvertsExtrinsics()
        {
            Vec3 pos = new Vec3(0.3, 1.7, -2.2);
            Quat q = Quat.Euler(12, -140, 7);
            Mat3 r;
            Vec3 t;
            UnityFrames.CameraExtrinsics(pos, q, out r, out t);
            Vec3 pos2;
            Quat q2;
            UnityFrames.CameraPose(r, t, out pos2, out q2);
            Assert.AreEqual(pos.X, pos2.X, 1e-9);
            Assert.AreEqual(pos.Y, pos2.Y, 1e-9);
            Assert.AreEqual(pos.Z, pos2.Z, 1e-9);
            Vec3 p = new Vec3(0.5, 0.9, 1.1);
            Vec3 a = UnityFrames.UnityPointToCameraMm(p, pos, q), b = UnityFrames.UnityPointToCameraMm(p, pos2, q2);
            Assert.AreEqual(a.X, b.X, 1e-6);
            Assert.AreEqual(a.Y, b.Y, 1e-6);
            Assert.AreEqual(a.Z, b.Z, 1e-6);
        }

        [Test]
        public void LookAtPutsTheTargetOnTheAxis()
        {
            Mat3 r;
            Vec3 t;
            CameraPoses.LookAt(new Vec3(3000, -2000, 1500), new Vec3(0, 0, 900), 0.1, out r, out t);
            Vec3 c = r * new Vec3(0, 0, 900) + t;
            Assert.AreEqual(0, c.X, 1e-9);
            Assert.AreEqual(0, c.Y, 1e-9);
            Assert.IsTrue(c.Z > 0);
            Assert.AreEqual(1, r.Determinant, 1e-12);
        }
    }

    [TestFixture]
    public class SkeletonTests
    {
        static Vec3?[] Bones()
        {
            var b = new Vec3?[HumanBones.LastBone];
            b[HumanBones.Hips] = new Vec3(0, 1.0, 0);
            b[HumanBones.LeftUpperLeg] = new Vec3(-0.1, 0.95, 0);
            b[HumanBones.RightUpperLeg] = new Vec3(0.1, 0.95, 0);
            b[HumanBones.LeftLowerLeg] = new Vec3(-0.1, 0.5, 0);
            b[HumanBones.RightLowerLeg] = new Vec3(0.1, 0.5, 0);
            b[HumanBones.LeftFoot] = new Vec3(-0.1, 0.08, 0);
            b[HumanBones.RightFoot] = new Vec3(0.1, 0.08, 0);
            b[HumanBones.Spine] = new Vec3(0, 1.1, 0);
            b[HumanBones.Head] = new Vec3(0, 1.6, 0);
            b[HumanBones.LeftUpperArm] = new Vec3(-0.2, 1.45, 0);
            b[HumanBones.RightUpperArm] = new Vec3(0.2, 1.45, 0);
            b[HumanBones.LeftLowerArm] = new Vec3(-0.45, 1.45, 0);
            b[HumanBones.RightLowerArm] = new Vec3(0.45, 1.45, 0);
            b[HumanBones.LeftHand] = new Vec3(-0.7, 1.45, 0);
            b[HumanBones.RightHand] = new Vec3(0.7, 1.45, 0);
            return b;
        }

        [Test]
        public void DerivedJointsFollowTheDocumentedRules()
        {
            Vec3?[] b = Bones();
            b[HumanBones.Neck] = new Vec3(0, 1.5, 0);
            Vec3[] j = H36m.FromBones(b, new Vec3(0, 1, 0), new Vec3(0, 0, 1), null);
            Assert.AreEqual(0.95, j[0].Y, 1e-12);          // Hip: mid upper legs
            Assert.AreEqual(0, j[0].X, 1e-12);
            Assert.AreEqual(1.5, j[8].Y, 1e-12);           // Thorax: the Neck bone
            Assert.AreEqual((0.95 + 1.5) / 2, j[7].Y, 1e-12); // Spine: mid Hip-Thorax
            Assert.AreEqual(1.6 + H36m.HeadTopUp * 0.1, j[10].Y, 1e-12);
            Assert.AreEqual(H36m.NoseForward * 0.1, j[9].Z, 1e-12);
            Assert.AreEqual(0.1, j[1].X, 1e-12);           // RHip is the right upper leg
        }

        [Test]
        public void ThoraxFallsBackToTheShouldersWithoutANeckBone()
        {
            Vec3[] j = H36m.FromBones(Bones(), new Vec3(0, 1, 0), new Vec3(0, 0, 1), new Vec3(0, 1.8, 0));
            Assert.AreEqual(1.45, j[8].Y, 1e-12);
            Assert.AreEqual(1.8, j[10].Y, 1e-12);
        }

        [Test]
        public void MissingRequiredBoneIsNamed()
        {
            Vec3?[] b = Bones();
            b[HumanBones.LeftHand] = null;
            ArgumentException e = Assert.Throws<ArgumentException>(delegate { H36m.FromBones(b, new Vec3(0, 1, 0), new Vec3(0, 0, 1), null); });
            Assert.IsTrue(e.Message.Contains("bone " + HumanBones.LeftHand), e.Message);
        }
    }

    [TestFixture]
    public class JsonTests
    {
        [Test]
        public void ParseErrorsNameLineAndColumn()
        {
            JsonException e = Assert.Throws<JsonException>(delegate { JsonValue.Parse("{\n  \"a\": 1,\n  \"b\" 2\n}"); });
            Assert.IsTrue(e.Message.StartsWith("line 3, column 7"), e.Message);
            e = Assert.Throws<JsonException>(delegate { JsonValue.Parse("{\"a\": 1, \"a\": 2}"); });
            Assert.IsTrue(e.Message.Contains("duplicate key"), e.Message);
        }

        [Test]
        public void FloatsAreWrittenAsPythonWritesThem()
        {
            Assert.AreEqual("0.1", JsonWriter.FormatDouble(0.1));
            Assert.AreEqual("1e-07", JsonWriter.FormatDouble(1e-7));
            Assert.AreEqual("1e+16", JsonWriter.FormatDouble(1e16));
            Assert.AreEqual("123.0", JsonWriter.FormatDouble(123));
            Assert.AreEqual("0.6666666666666666", JsonWriter.FormatDouble(2.0 / 3.0));
            Assert.AreEqual("1145.34568", JsonWriter.FormatG9(1145.3456789));
            Assert.AreEqual("1", JsonWriter.FormatG9(1.0));
            Assert.AreEqual("1.23456789e+09", JsonWriter.FormatG9(1234567890));
            Assert.AreEqual("1e-05", JsonWriter.FormatG9(1e-5));
        }

        [Test]
        public void RoundTripKeepsIntegersAndOrder()
        {
            string text = "{\"b\":[1,2.5,-3e-05],\"a\":{\"x\":true,\"y\":null,\"z\":\"q\\\"\\n\"}}";
            Assert.AreEqual(text, JsonValue.Parse(text).ToJson());
        }
    }

    [TestFixture]
    public class ProtocolTests
    {
        [Test]
        public void Crc32MatchesTheCheckValue()
        {
            Assert.AreEqual(0xCBF43926u, Crc32.Compute(System.Text.Encoding.ASCII.GetBytes("123456789")));
        }

        [Test]
        public void FrameHeaderRejectsNonFiniteJoints()
        {
            FrameHeader h = SampleHeader();
            h.Joints3d[4][2] = double.NaN;
            ProtocolException e = Assert.Throws<ProtocolException>(delegate { h.Encode(); });
            Assert.IsTrue(e.Message.Contains("joints_3d[4][2]"), e.Message);
        }

        [Test]
        public void FrameHeaderRejectsAMismatchedImage()
        {
            FrameHeader h = SampleHeader();
            h.Image.Width = 10;
            Assert.Throws<ProtocolException>(delegate { h.Encode(); });
        }

        [Test]
        public void FrameHeaderStartsLikePythonsEncoder()
        {
            string s = SampleHeader().EncodeString();
            Assert.IsTrue(s.StartsWith("{\"type\":\"frame\",\"protocol\":\"1.1\",\"run_id\":\"run1\""), s);
            Assert.IsTrue(s.Contains("\"K\":[[100,0,32],[0,100,24],[0,0,1]]"), s);
            Assert.IsFalse(s.Contains("\"mask\""), s);  // no mask part: the field is left out, not null
        }

        [Test]
        public void AMaskIsDescribedAfterTheImageAndMustMatchIt()
        {
            FrameHeader h = SampleHeader();
            Assert.AreEqual(2, h.Parts);
            byte[] png = MaskPng.Encode(new byte[64 * 48], 64, 48);
            h.Mask = MaskInfo.Describe(64, 48, png, png.Length);
            Assert.AreEqual(3, h.Parts);
            string s = h.EncodeString();
            string expected = "\"mask\":{\"encoding\":\"png\",\"shape\":[48,64],\"size_bytes\":" + png.Length + ",\"crc32\":" + Crc32.Compute(png) + "},\"meta\":";
            Assert.IsTrue(s.Contains("\"size_bytes\":9216,\"crc32\":" + h.Image.Crc32 + "}," + expected), s);  // right after the image
            h.Mask.Width = 63;
            ProtocolException e = Assert.Throws<ProtocolException>(delegate { h.Encode(); });
            Assert.IsTrue(e.Message.Contains("mask.shape 48x63"), e.Message);
        }

        [Test]
        public void MaskPngHasTheHeaderAPngDecoderNeeds()
        {
            var mask = new byte[] { 0, 1, 7, 0, 0, 1 };  // 3 x 2, rows top to bottom
            byte[] png = MaskPng.Encode(mask, 3, 2);
            Assert.AreEqual(0x89, (int)png[0]);
            Assert.AreEqual("PNG", System.Text.Encoding.ASCII.GetString(png, 1, 3));
            Assert.AreEqual("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
            Assert.AreEqual(3, (int)png[19]);  // width, big-endian
            Assert.AreEqual(2, (int)png[23]);  // height
            Assert.AreEqual(8, (int)png[24]);  // bit depth
            Assert.AreEqual(0, (int)png[25]);  // greyscale
            Assert.AreEqual("IEND", System.Text.Encoding.ASCII.GetString(png, png.Length - 8, 4));
            // Rows given bottom to top are flipped into the same image.
            byte[] flipped = MaskPng.Encode(new byte[] { 0, 0, 1, 0, 1, 7 }, 3, 2, bottomUp: true);
            Assert.AreEqual(Convert.ToBase64String(png), Convert.ToBase64String(flipped));
            Assert.Throws<ArgumentException>(delegate { MaskPng.Encode(mask, 4, 2); });
        }

        internal static FrameHeader SampleHeader()
        {
            var j3 = new double[17][];
            var j2 = new double[17][];
            for (int i = 0; i < 17; i++)
            {
                j3[i] = new double[] { i, -i, 3000 + i };
                j2[i] = new double[] { 32 + i / 30.0, 24 - i / 30.0 };
            }
            var image = new byte[64 * 48 * 3];
            return new FrameHeader
            {
                RunId = "run1",
                PlayerId = "unity-0",
                Seq = 1,
                FrameId = 7,
                Seed = 3,
                K = new Intrinsics(100, 100, 32, 24),
                ImageWidth = 64,
                ImageHeight = 48,
                R = Mat3.Identity,
                T = new Vec3(0, 0, 0),
                Joints2d = j2,
                Joints3d = j3,
                Joints3dWorld = j3,
                Joints2dRight = j2,
                Visibility = new int[17],
                BaselineMm = 500,
                Image = ImageInfo.Describe("raw", 64, 48, 3, image, image.Length),
            };
        }
    }

    [TestFixture]
    public class ConfigTests
    {
        const string Minimal = "{\"run_id\":\"r\",\"player_id\":\"p-0\",\"seed\":5,\"endpoint\":\"tcp://127.0.0.1:5555\",\"frames\":\"0-9,20-24\"}";

        [Test]
        public void MinimalConfigGetsDefaults()
        {
            RunConfig c = RunConfig.Parse(Minimal, "test");
            Assert.AreEqual(15L, c.FrameCount);
            Assert.AreEqual("jpeg", c.Encoding);
            Assert.AreEqual(256, c.Scene.ImageWidth);
            Assert.AreEqual(2, c.Scene.Camera.Profiles.Count);
        }

        [Test]
        public void UnknownKeyIsRejectedWithItsPath()
        {
            ConfigException e = Assert.Throws<ConfigException>(delegate { RunConfig.Parse(Minimal.Replace("\"seed\"", "\"sede\""), "cfg.json"); });
            Assert.IsTrue(e.Message.StartsWith("cfg.json: sede: unknown key"), e.Message);
        }

        [Test]
        public void InvertedRangeIsRejectedWithItsPath()
        {
            string bad = Minimal.Replace("}", ",\"scene\":{\"lighting\":{\"intensity\":[2,1]}}}");
            ConfigException e = Assert.Throws<ConfigException>(delegate { RunConfig.Parse(bad, "side channel"); });
            Assert.IsTrue(e.Message.Contains("scene.lighting.intensity: low 2 > high 1"), e.Message);
        }

        [Test]
        public void OverlappingFrameRangesAreRejected()
        {
            ConfigException e = Assert.Throws<ConfigException>(delegate { RunConfig.Parse(Minimal.Replace("0-9,20-24", "0-9,5-24"), "c"); });
            Assert.IsTrue(e.Message.Contains("frames: item 2 \"5-24\""), e.Message);
        }

        [Test]
        public void CommandLineOverridesTheConfig()
        {
            PlayerArgs a = PlayerArgs.Parse(new[] { "-batchmode", "--mlagents-port", "5007", "--posebridge-frames", "4", "--posebridge-seed", "9" });
            Assert.IsTrue(a.BatchMode);
            Assert.IsTrue(a.Controlled);
            RunConfig c = RunConfig.Parse(Minimal, "test");
            a.ApplyTo(c);
            Assert.AreEqual(4L, c.FrameCount);
            Assert.AreEqual(9L, c.Seed);
            Assert.Throws<ConfigException>(delegate { PlayerArgs.Parse(new[] { "--posebridge-seed", "x" }); });
        }
    }

    [TestFixture]
    public class SamplingTests
    {
        [Test]
        public void FrameStreamsDependOnSeedFrameAndPurposeOnly()
        {
            Assert.AreEqual(new FrameRng(1, 2, 3).NextULong(), new FrameRng(1, 2, 3).NextULong());
            Assert.IsFalse(new FrameRng(1, 2, 3).NextULong() == new FrameRng(1, 3, 3).NextULong());
            Assert.IsFalse(new FrameRng(1, 2, 3).NextULong() == new FrameRng(1, 2, 4).NextULong());
        }

        [Test]
        public void SampledCamerasFrameThePose()
        {
            CameraSamplerSettings settings = CameraSamplerSettings.Default();
            var joints = new Vec3[17];
            for (int i = 0; i < 17; i++) joints[i] = new Vec3(i * 10, 0, 100 + 90 * i);
            for (int f = 0; f < 20; f++)
            {
                bool ok;
                SampledCamera cam = CameraSampler.SampleForPose(new FrameRng(11, f, FrameRng.CameraStream), joints, settings, 256, 256, 500, out ok);
                Assert.IsTrue(ok);
                Assert.AreEqual(1, cam.R.Determinant, 1e-9);
                Assert.IsTrue(FrameGroundTruth.Compute(joints, cam.R, cam.T, cam.K, 256, 256, 500).InFrameFraction >= 0.9);
            }
        }
    }
}
