// Console runner for the engine-free core, compiled with mcs (see build.sh). Commands:
//   test                   run the EditMode tests (Tests/EditMode) through NUnitShim; exit 1 on failure
//   vectors IN.json OUTDIR write protocol frames and computed values for shared test vectors
//   config FILE            parse a run config; print a summary, or the error and exit 2
//   body-vectors IN OUT    retarget the shared body vectors (tests/data/unity_body_vectors.json) to OUT.json
//   body-glb GLB POSES OUT read a body .glb, retarget POSES.json, pose and skin it as the Unity player does
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Text;
using NUnit.Framework;
using PoseBridge.Core;

namespace PoseBridge.ConsoleRunner
{
    public static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length == 1 && args[0] == "test") return RunTests();
            if (args.Length == 3 && args[0] == "vectors") return WriteVectors(args[1], args[2]);
            if (args.Length == 2 && args[0] == "config") return CheckConfig(args[1]);
            if (args.Length == 3 && args[0] == "body-vectors") return BodyVectors(args[1], args[2]);
            if (args.Length == 4 && args[0] == "body-glb") return BodyFromGlb(args[1], args[2], args[3]);
            Console.Error.WriteLine("usage: runner.exe test | vectors IN.json OUTDIR | config FILE | body-vectors IN.json OUT.json | body-glb BODY.glb POSES.json OUT.json");
            return 64;
        }

        // ------------------------------------------------------------------------------------------
        static int RunTests()
        {
            int passed = 0, failed = 0;
            foreach (Type type in Assembly.GetExecutingAssembly().GetTypes())
            {
                if (type.GetCustomAttributes(typeof(TestFixtureAttribute), false).Length == 0) continue;
                foreach (MethodInfo m in type.GetMethods(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (m.GetCustomAttributes(typeof(TestAttribute), false).Length == 0) continue;
                    string name = type.Name + "." + m.Name;
                    try
                    {
                        m.Invoke(Activator.CreateInstance(type), null);
                        passed++;
                        Console.WriteLine("PASS " + name);
                    }
                    catch (TargetInvocationException e)
                    {
                        failed++;
                        Console.WriteLine("FAIL " + name + ": " + e.InnerException.GetType().Name + ": " + e.InnerException.Message);
                    }
                }
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }

        static int CheckConfig(string path)
        {
            try
            {
                RunConfig c = RunConfig.Parse(File.ReadAllText(path, Encoding.UTF8), path);
                Console.WriteLine("ok run_id=" + c.RunId + " player_id=" + c.PlayerId + " frames=" + c.FrameCount + " profiles=" + c.Scene.Camera.Profiles.Count + " poses=" + c.Poses.Rows.Count);
                return 0;
            }
            catch (ConfigException e)
            {
                Console.WriteLine(e.Message);
                return 2;
            }
        }

        // ------------------------------------------------------------------------------------------
        // Test vectors: every case is written as files the Python test reads back.
        //   <name>.header.json / <name>.image.bin  protocol frames and control messages
        //   <name>.mask.bin                        a frame's person-mask part, for cases with "mask"
        //   results.json                           computed values and caught errors, by case name

        static int WriteVectors(string inPath, string outDir)
        {
            Directory.CreateDirectory(outDir);
            JsonValue root = JsonValue.Parse(File.ReadAllText(inPath, Encoding.UTF8));
            var results = new JsonWriter();
            results.BeginObject();

            results.Name("intrinsics").BeginObject();
            foreach (JsonValue c in root.Get("intrinsics").Items)
            {
                results.Name(c.Get("name").StringValue);
                WriteIntrinsics(results, CameraK(c.Get("camera"), (int)c.Get("width").IntegerValue, (int)c.Get("height").IntegerValue));
            }
            results.EndObject();

            results.Name("points").BeginObject();
            foreach (JsonValue c in root.Get("points").Items)
            {
                Vec3 pos = V(c.Get("camera_position"));
                Quat q = Rotation(c);
                Mat3 r;
                Vec3 t;
                UnityFrames.CameraExtrinsics(pos, q, out r, out t);
                results.Name(c.Get("name").StringValue).BeginObject();
                results.Name("R").Value(r.ToRows());
                results.Name("t").Value(t.ToArray());
                results.Name("world_mm").BeginArray();
                foreach (JsonValue p in c.Get("unity_points").Items) results.Value(UnityFrames.UnityToWorldMm(V(p)).ToArray());
                results.EndArray();
                results.Name("camera_mm").BeginArray();
                foreach (JsonValue p in c.Get("unity_points").Items) results.Value(UnityFrames.UnityPointToCameraMm(V(p), pos, q).ToArray());
                results.EndArray();
                Vec3 pos2;
                Quat q2;
                UnityFrames.CameraPose(r, t, out pos2, out q2);
                results.Name("pose_back").Value(new[] { pos2.X, pos2.Y, pos2.Z, q2.X, q2.Y, q2.Z, q2.W });
                results.EndObject();
            }
            results.EndObject();

            results.Name("skeletons").BeginObject();
            foreach (JsonValue c in root.Get("skeletons").Items)
            {
                var bones = new Vec3?[HumanBones.LastBone];
                foreach (KeyValuePair<string, JsonValue> b in c.Get("bones").Members) bones[int.Parse(b.Key)] = V(b.Value);
                JsonValue top = c.Get("head_top");
                Vec3[] joints = H36m.FromBones(bones, V(c.Get("head_up")), V(c.Get("head_forward")), top == null ? (Vec3?)null : V(top));
                results.Name(c.Get("name").StringValue).Value(Protocol.Rows(joints));
            }
            results.EndObject();

            int written = 0;
            foreach (JsonValue c in root.Get("frames").Items)
            {
                string name = c.Get("name").StringValue;
                byte[] image, mask;
                FrameHeader h = BuildFrame(c, out image, out mask);
                File.WriteAllBytes(Path.Combine(outDir, name + ".header.json"), h.Encode());
                File.WriteAllBytes(Path.Combine(outDir, name + ".image.bin"), image);
                if (mask != null) File.WriteAllBytes(Path.Combine(outDir, name + ".mask.bin"), mask);
                written++;
            }
            foreach (JsonValue c in root.Get("controls").Items)
            {
                File.WriteAllBytes(Path.Combine(outDir, c.Get("name").StringValue + ".header.json"), BuildControl(c).Encode());
                written++;
            }

            results.Name("errors").BeginObject();
            foreach (JsonValue c in root.Get("bad_frames").Items)
            {
                byte[] image, mask;
                string error = "";
                try
                {
                    BuildFrame(c, out image, out mask).Encode();
                }
                catch (ProtocolException e)
                {
                    error = e.Message;
                }
                results.Name(c.Get("name").StringValue).Value(error);
            }
            foreach (JsonValue c in root.Get("configs").Items)
            {
                string error = "";
                try
                {
                    RunConfig.Parse(c.Get("text").StringValue, c.Get("name").StringValue);
                }
                catch (ConfigException e)
                {
                    error = e.Message;
                }
                results.Name(c.Get("name").StringValue).Value(error);
            }
            results.EndObject();

            results.Name("sampled").BeginObject();
            JsonValue sampled = root.Get("sampled");
            RunConfig cfg = RunConfig.Parse(sampled.Get("config").ToJson(), "sampled.config");
            Vec3[] pose = Joints(sampled.Get("joints_world_mm"));
            foreach (long f in cfg.FrameIds())
            {
                bool ok;
                SampledCamera cam = CameraSampler.SampleForPose(new FrameRng(cfg.Seed, f, FrameRng.CameraStream), pose, cfg.Scene.Camera,
                    cfg.Scene.ImageWidth, cfg.Scene.ImageHeight, cfg.Scene.BaselineMm, out ok);
                results.Name(f.ToString()).BeginObject();
                results.Name("accepted").Value(ok);
                results.Name("profile").Value(cfg.Scene.Camera.Profiles[cam.Profile].Name);
                results.Name("K").Value(cam.K.ToRows());
                results.Name("image_size").BeginArray().Value(cam.Width).Value(cam.Height).EndArray();
                results.Name("R").Value(cam.R.ToRows());
                results.Name("t").Value(cam.T.ToArray());
                results.EndObject();
            }
            results.EndObject();

            results.EndObject();
            File.WriteAllText(Path.Combine(outDir, "results.json"), results.ToString(), new UTF8Encoding(false));
            Console.WriteLine("wrote " + written + " messages to " + outDir);
            return 0;
        }

        // ------------------------------------------------------------------------------------------
        // The body: retargeting vectors, and a whole .glb posed and skinned the way the player does it

        static int BodyVectors(string inPath, string outPath)
        {
            JsonValue root = JsonValue.Parse(File.ReadAllText(inPath, Encoding.UTF8));
            BodyDefinition d = BodyDefinition.Parse(root.Get("definition"), inPath);
            JsonValue rest = root.Get("rest");
            Vec3[] heads = Joints(rest.Get("bone_heads_mm"));
            var positions = new Dictionary<int, Vec3>();
            var weights = new Dictionary<int, KeyValuePair<int, double>[]>();
            foreach (JsonValue l in rest.Get("landmarks").Items)
            {
                int v = (int)l.Get("vertex").IntegerValue;
                positions[v] = V(l.Get("position_mm"));
                var bw = new List<KeyValuePair<int, double>>();
                foreach (JsonValue e in l.Get("bone_weights").Items) bw.Add(new KeyValuePair<int, double>((int)e.Items[0].IntegerValue, e.Items[1].NumberValue));
                weights[v] = bw.ToArray();
            }
            BodyRig rig = BodyRig.Build(d, heads, positions, weights);
            var w = new JsonWriter();
            w.BeginObject();
            WriteRig(w, rig);
            w.Name("poses").BeginObject();
            foreach (JsonValue t in root.Get("targets").Items)
            {
                SegmentPose pose = Retarget.PoseBody(rig, Joints(t.Get("joints_mm")));
                w.Name(t.Get("name").StringValue).BeginObject();
                WritePose(w, rig, pose);
                w.Name("unity_m").BeginArray();
                for (int s = 0; s < pose.Q.Length; s++)
                {
                    Mat3 m;
                    Vec3 c;
                    pose.UnityMotion(s, out m, out c);
                    w.Value(m.ToRows());
                }
                w.EndArray();
                w.Name("unity_c").BeginArray();
                for (int s = 0; s < pose.Q.Length; s++)
                {
                    Mat3 m;
                    Vec3 c;
                    pose.UnityMotion(s, out m, out c);
                    w.Value(c.ToArray());
                }
                w.EndArray();
                w.EndObject();
            }
            w.EndObject();
            w.EndObject();
            File.WriteAllText(outPath, w.ToString(), new UTF8Encoding(false));
            Console.WriteLine("retargeted " + root.Get("targets").Count + " poses");
            return 0;
        }

        static void WriteRig(JsonWriter w, BodyRig rig)
        {
            w.Name("rig").BeginObject();
            w.Name("pivots").Value(Protocol.Rows(rig.Pivots));
            w.Name("anchors").Value(Protocol.Rows(rig.Anchors));
            w.Name("rest_joints").Value(Protocol.Rows(rig.RestJoints()));
            w.EndObject();
        }

        static void WritePose(JsonWriter w, BodyRig rig, SegmentPose pose)
        {
            w.Name("Q").BeginArray();
            foreach (Mat3 q in pose.Q) w.Value(q.ToRows());
            w.EndArray();
            w.Name("t").Value(Protocol.Rows(pose.T));
            w.Name("joints").Value(Protocol.Rows(rig.PosedJoints(pose)));
        }

        static int BodyFromGlb(string glbPath, string posesPath, string outPath)
        {
            BodyGlb body;
            try
            {
                body = BodyGlb.Load(File.ReadAllBytes(glbPath), glbPath);
            }
            catch (GlbException e)
            {
                Console.WriteLine(e.Message);
                return 2;
            }
            BodyRig rig = body.Rig();
            int nb = body.BoneCount, nv = body.VertexCount;
            var rest = new Affine[nb];
            var bind = new Affine[nb];
            for (int b = 0; b < nb; b++)
            {
                rest[b] = body.ImportRest(b);
                bind[b] = body.ImportBindpose(b);
            }
            var vertices = new Vec3[nv];
            for (int v = 0; v < nv; v++) vertices[v] = body.ImportVertex(v);
            int maxInfluences = 0;
            for (int v = 0; v < nv; v++) maxInfluences = Math.Max(maxInfluences, body.InfluenceStart[v + 1] - body.InfluenceStart[v]);

            var w = new JsonWriter();
            w.BeginObject();
            WriteRig(w, rig);
            w.Name("bones").Value(nb);
            w.Name("vertices").Value(nv);
            w.Name("triangles").Value(body.Triangles.Length / 3);
            w.Name("max_influences").Value(maxInfluences);
            w.Name("humanoid").BeginObject();
            foreach (KeyValuePair<string, int> h in body.Definition.Humanoid) w.Name(h.Key).Value(body.Definition.Bones[h.Value]);
            w.EndObject();
            // At rest, Unity's skinning must give the mesh back: localToWorld * bindpose = identity.
            double restError = 0;
            for (int v = 0; v < nv; v++) restError = Math.Max(restError, (body.SkinUnity(v, rest, bind, vertices[v]) - vertices[v]).Norm);
            w.Name("rest_skin_error_m").Value(restError);
            w.Name("poses").BeginObject();
            foreach (JsonValue t in JsonValue.Parse(File.ReadAllText(posesPath, Encoding.UTF8)).Items)
            {
                SegmentPose pose = Retarget.PoseBody(rig, Joints(t.Get("joints_mm")));
                Affine[] bones = body.UnityBoneTransforms(pose, rest);
                w.Name(t.Get("name").StringValue).BeginObject();
                WritePose(w, rig, pose);
                var heads = new Vec3[nb];
                for (int b = 0; b < nb; b++) heads[b] = UnityFrames.UnityToWorldMm(bones[b].T);
                w.Name("unity_bone_heads_mm").Value(Protocol.Rows(heads));
                w.Name("unity_joints_mm").Value(Protocol.Rows(UnityFrames.UnityToWorldMm(body.JointsUnity(bones, bind))));
                var skinned = new double[3 * nv];
                for (int v = 0; v < nv; v++)
                {
                    Vec3 p = UnityFrames.UnityToWorldMm(body.SkinUnity(v, bones, bind, vertices[v]));
                    skinned[3 * v] = p.X;
                    skinned[3 * v + 1] = p.Y;
                    skinned[3 * v + 2] = p.Z;
                }
                w.Name("unity_vertices_mm").Value(skinned);
                w.EndObject();
            }
            w.EndObject();
            w.EndObject();
            File.WriteAllText(outPath, w.ToString(), new UTF8Encoding(false));
            Console.WriteLine("posed " + glbPath + ": " + nb + " bones, " + nv + " vertices");
            return 0;
        }

        static Vec3 V(JsonValue a) { return new Vec3(a.Items[0].NumberValue, a.Items[1].NumberValue, a.Items[2].NumberValue); }

        static Vec3[] Joints(JsonValue a)
        {
            var j = new Vec3[a.Items.Count];
            for (int i = 0; i < j.Length; i++) j[i] = V(a.Items[i]);
            return j;
        }

        static Quat Rotation(JsonValue c)
        {
            JsonValue e = c.Get("camera_euler_deg");
            if (e != null) return Quat.Euler(e.Items[0].NumberValue, e.Items[1].NumberValue, e.Items[2].NumberValue);
            JsonValue q = c.Get("camera_quaternion");
            return new Quat(q.Items[0].NumberValue, q.Items[1].NumberValue, q.Items[2].NumberValue, q.Items[3].NumberValue);
        }

        static Intrinsics CameraK(JsonValue cam, int width, int height)
        {
            if (cam.Has("fov_y_deg")) return Intrinsics.FromVerticalFov(cam.Get("fov_y_deg").NumberValue, width, height);
            JsonValue sensor = cam.Get("sensor_mm"), shift = cam.Get("lens_shift");
            var fit = (GateFit)Enum.Parse(typeof(GateFit), cam.Get("gate_fit").StringValue);
            return Intrinsics.FromPhysical(cam.Get("focal_mm").NumberValue, sensor.Items[0].NumberValue, sensor.Items[1].NumberValue,
                shift.Items[0].NumberValue, shift.Items[1].NumberValue, fit, width, height);
        }

        static void WriteIntrinsics(JsonWriter w, Intrinsics k) { w.Value(k.ToRows()); }

        // A frame the way the Unity runtime builds one: Unity joints and camera -> our frames -> header.
        static FrameHeader BuildFrame(JsonValue c, out byte[] image, out byte[] mask)
        {
            int width = (int)c.Get("width").IntegerValue, height = (int)c.Get("height").IntegerValue;
            Vec3 pos = V(c.Get("camera_position"));
            Quat q = Rotation(c);
            Mat3 r;
            Vec3 t;
            UnityFrames.CameraExtrinsics(pos, q, out r, out t);
            Intrinsics k = CameraK(c.Get("camera"), width, height);
            Vec3[] world = UnityFrames.UnityToWorldMm(Joints(c.Get("joints_unity")));
            double baseline = c.Get("baseline_mm").NumberValue;
            FrameGroundTruth g = FrameGroundTruth.Compute(world, r, t, k, width, height, baseline);
            var occluded = new bool[g.InImage.Length];
            JsonValue occ = c.Get("occluded");
            if (occ != null) foreach (JsonValue o in occ.Items) occluded[(int)o.IntegerValue] = true;

            int channels = (int)c.Get("channels").IntegerValue;
            image = RawPattern(width, height, channels, (int)c.Get("frame_id").IntegerValue);
            JsonValue src = c.Get("source");
            var h = new FrameHeader
            {
                RunId = c.Get("run_id").StringValue,
                PlayerId = c.Get("player_id").StringValue,
                Seq = c.Get("seq").IntegerValue,
                FrameId = c.Get("frame_id").IntegerValue,
                Seed = c.Get("seed").IntegerValue,
                K = k,
                ImageWidth = width,
                ImageHeight = height,
                R = r,
                T = t,
                Joints2d = g.Joints2d,
                Joints3d = Protocol.Rows(g.JointsCamera),
                Joints3dWorld = Protocol.Rows(world),
                Joints2dRight = g.Joints2dRight,
                Visibility = g.Visibility(occluded),
                BaselineMm = baseline,
                Source = src == null ? PoseSource.Prior()
                    : PoseSource.FromClip(src.Get("clip").StringValue, src.Get("frame").IntegerValue, src.Get("subject").StringValue, src.Get("action").StringValue),
                Image = ImageInfo.Describe("raw", width, height, channels, image, image.Length),
            };
            mask = null;
            if (c.Has("mask"))
            {
                // A person mask the way a Unity readback delivers it: rows bottom to top.
                mask = MaskPng.Encode(DiscPattern(width, height, true), width, height, bottomUp: true);
                h.Mask = MaskInfo.Describe(width, height, mask, mask.Length);
            }
            JsonValue meta = c.Get("meta");
            if (meta != null) foreach (KeyValuePair<string, JsonValue> m in meta.Members) h.Meta.Add(m);
            JsonValue corrupt = c.Get("corrupt");
            if (corrupt != null)
            {
                string what = corrupt.StringValue;
                if (what == "nan_joint") h.Joints3d[3][1] = double.NaN;
                else if (what == "visibility") h.Visibility[0] = 3;
                else if (what == "player_id") h.PlayerId = "bad id!";
                else if (what == "image_size") h.Image.Width = width + 1;
                else if (what == "joint_count") h.Joints2d = new double[16][];
            }
            return h;
        }

        /// <summary>A test mask: 1 inside the disc of radius min(w, h) / 3 around the image centre, 0 outside, plus
        /// 255 in the top-left pixel (any nonzero byte is the person); rows bottom to top when asked.</summary>
        static byte[] DiscPattern(int width, int height, bool bottomUp)
        {
            var data = new byte[width * height];
            double r = Math.Min(width, height) / 3.0;
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    double dx = x + 0.5 - width / 2.0, dy = y + 0.5 - height / 2.0;
                    byte v = (byte)(dx * dx + dy * dy < r * r ? 1 : 0);
                    if (x == 0 && y == 0) v = 255;
                    data[(bottomUp ? height - 1 - y : y) * width + x] = v;
                }
            return data;
        }

        /// <summary>A deterministic raw RGB(A) test image: rows top to bottom, row-major (numpy's (H, W, C) layout).</summary>
        static byte[] RawPattern(int width, int height, int channels, int salt)
        {
            var data = new byte[width * height * channels];
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    for (int ch = 0; ch < channels; ch++)
                        data[(y * width + x) * channels + ch] = (byte)((x * 3 + y * 5 + ch * 7 + salt) & 0xFF);
            return data;
        }

        static Envelope BuildControl(JsonValue c)
        {
            string type = c.Get("type").StringValue;
            Envelope e;
            if (type == "hello")
            {
                var h = new Hello
                {
                    PlayerKind = c.Get("player_kind").StringValue,
                    FramesPlanned = c.Get("frames_planned").IntegerValue,
                    Pid = c.Get("pid").IntegerValue,
                    Host = c.Get("host").StringValue,
                };
                foreach (KeyValuePair<string, JsonValue> v in c.Get("versions").Members) h.Versions.Add(new KeyValuePair<string, string>(v.Key, v.Value.StringValue));
                JsonValue caps = c.Get("capabilities");
                var enc = new List<string>();
                foreach (JsonValue x in caps.Get("encodings").Items) enc.Add(x.StringValue);
                h.Capabilities.Encodings = enc.ToArray();
                h.Capabilities.Visibility = caps.Get("visibility").StringValue;
                h.Capabilities.RightView = caps.Get("right_view").BoolValue;
                h.Capabilities.MaxWidth = (int)caps.Get("max_image_size").Items[0].IntegerValue;
                h.Capabilities.MaxHeight = (int)caps.Get("max_image_size").Items[1].IntegerValue;
                e = h;
            }
            else if (type == "heartbeat")
            {
                e = new Heartbeat { FramesSent = c.Get("frames_sent").IntegerValue, FramesPlanned = c.Get("frames_planned").IntegerValue, Fps = c.Get("fps").NumberValue };
            }
            else if (type == "end")
            {
                e = new EndOfStream { FramesSent = c.Get("frames_sent").IntegerValue };
            }
            else
            {
                JsonValue f = c.Get("frame_id");
                e = new ErrorMessage
                {
                    Code = c.Get("code").StringValue,
                    Message = c.Get("message").StringValue,
                    Fatal = c.Get("fatal").BoolValue,
                    FrameId = f == null || f.Kind == JsonKind.Null ? (long?)null : f.IntegerValue,
                };
            }
            e.RunId = c.Get("run_id").StringValue;
            e.PlayerId = c.Get("player_id").StringValue;
            e.Seq = c.Get("seq").IntegerValue;
            return e;
        }
    }
}
