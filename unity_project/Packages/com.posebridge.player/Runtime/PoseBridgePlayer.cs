// The player: batch entry, configuration, the frame loop and a clean exit.
//
// Launched by posebridge (bridge/launcher.py) the player gets "--mlagents-port P" and waits for its run
// config on the GeneratorConfigChannel; standalone it reads --posebridge-config FILE. It then renders
// each assigned frame id (the scene is a function of seed and frame id), streams [header, image] over
// ZeroMQ, reports its status to Python through the side channel, and quits when Python closes the
// environment (or, standalone, when done). Run headless with -batchmode and WITHOUT -nographics
// (which leaves cameras black), on a GPU or under Xvfb.
using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using PoseBridge.Core;
using Unity.MLAgents;
using Unity.MLAgents.SideChannels;
using UnityEngine;

namespace PoseBridge.Runtime
{
    [DefaultExecutionOrder(-100)]
    public sealed class PoseBridgePlayer : MonoBehaviour
    {
        public const string PackageVersion = "0.1.0";

        [Header("Scene")]
        public Camera renderCamera;
        public Light sun;
        public GeneratorAgent agent;
        [Tooltip("Unlit/Texture material for the background quad (BuildScript makes one).")]
        public Material backgroundMaterial;
        [Tooltip("Lit material for the mannequin and occluders (BuildScript makes one).")]
        public Material bodyMaterial;

        [Header("Avatars and poses")]
        public bool useMannequin = true;
        public List<GameObject> avatarPrefabs = new List<GameObject>();
        [Tooltip("Humanoid AnimationClips to sample when Python sends no poses.")]
        public List<AnimationClip> clips = new List<AnimationClip>();

        [Header("Pipeline")]
        [Tooltip("GPU readbacks in flight; more hides latency, costs GPU memory.")]
        public int maxReadbacksInFlight = 4;
        [Tooltip("Upper bound of frames started per Update.")]
        public int maxFramesPerUpdate = 8;
        [Tooltip("Seconds to wait for Python to close the environment after the last frame.")]
        public float closeTimeoutSeconds = 60f;

        PlayerArgs args;
        GeneratorConfigChannel channel;
        RunConfig config;
        string configError;
        string state = "starting";
        FramePipeline pipeline;
        readonly Dictionary<HumanoidRig, PoseDriver> poseDrivers = new Dictionary<HumanoidRig, PoseDriver>();
        readonly Dictionary<HumanoidRig, BodyRandomizer> bodies = new Dictionary<HumanoidRig, BodyRandomizer>();
        long framesSent;
        float fps;

        void Awake()
        {
            Application.runInBackground = true;
            QualitySettings.vSyncCount = 0;
            Application.targetFrameRate = -1;
            try
            {
                args = PlayerArgs.Parse(Environment.GetCommandLineArgs());
            }
            catch (ConfigException e)
            {
                Fail("config_invalid", e.Message, 2);
                return;
            }
            channel = new GeneratorConfigChannel();
            channel.MessageReceived += OnConfigMessage;
            SideChannelManager.RegisterSideChannel(channel);
            if (renderCamera != null) renderCamera.enabled = false; // rendered on demand, into a RenderTexture
        }

        void Start()
        {
            if (args == null) return;
            if (args.NoGraphics || SystemInfo.graphicsDeviceType == UnityEngine.Rendering.GraphicsDeviceType.Null)
            {
                // -nographics initializes no graphics device: every camera renders nothing, silently.
                Fail("no_graphics", "started without a graphics device (-nographics?): cameras would render nothing; run with -batchmode only, on a GPU or under Xvfb", 3);
                return;
            }
            if (!args.Controlled)
            {
                if (args.ConfigPath == null)
                {
                    Fail("config_invalid", "no run config: launch through posebridge (--mlagents-port) or pass --posebridge-config FILE", 2);
                    return;
                }
                try
                {
                    OnConfigMessage(File.ReadAllText(args.ConfigPath));
                }
                catch (IOException e)
                {
                    Fail("config_invalid", args.ConfigPath + ": " + e.Message, 2);
                    return;
                }
            }
            StartCoroutine(Run());
        }

        void OnConfigMessage(string json)
        {
            if (config != null) return; // one run per process; a restart is a new process
            try
            {
                RunConfig c = RunConfig.Parse(json, args.Controlled ? "side channel config" : args.ConfigPath);
                args.ApplyTo(c);
                config = c;
            }
            catch (ConfigException e)
            {
                configError = e.Message;
            }
        }

        IEnumerator Run()
        {
            while (config == null && configError == null)
            {
                agent.Tick(true); // keep the exchanges going: the config arrives inside one
                yield return null;
            }
            if (configError != null)
            {
                Fail("config_invalid", configError, 2);
                yield break;
            }

            // Avatars that load from files (the posebridge body through glTFast) are ready before the scene is built.
            foreach (IAvatarLoader loader in GetComponents<IAvatarLoader>())
            {
                System.Threading.Tasks.Task loading;
                try
                {
                    loading = loader.LoadAsync();
                }
                catch (Exception e)
                {
                    Fail("setup_failed", e.Message, 4);
                    yield break;
                }
                while (!loading.IsCompleted) yield return null;
                if (loading.IsFaulted)
                {
                    Exception e = loading.Exception.GetBaseException();
                    Fail("setup_failed", e.Message, 4);
                    yield break;
                }
            }

            RenderTexture target;
            SceneParts scene;
            try
            {
                scene = BuildScene(out target);
            }
            catch (Exception e)
            {
                Fail("setup_failed", e.Message, 4);
                yield break;
            }

            long planned = config.FrameCount, started = 0;
            pipeline.SendControl(MakeHello(planned));
            state = "running";
            float lastBeat = Time.realtimeSinceStartup, rateStart = lastBeat;
            long rateFrames = 0;
            IEnumerator<long> ids = config.FrameIds().GetEnumerator();
            bool more = ids.MoveNext();
            while (more)
            {
                int thisUpdate = 0;
                while (more && thisUpdate < maxFramesPerUpdate && pipeline.CanAccept(maxReadbacksInFlight))
                {
                    string error = RenderFrame(ids.Current, scene, target);
                    if (error != null)
                    {
                        Fail("framing_failed", error, 5);
                        yield break;
                    }
                    started++;
                    thisUpdate++;
                    more = ids.MoveNext();
                }
                framesSent = pipeline.FramesSent;
                if (pipeline.Failure != null)
                {
                    Fail("send_failed", pipeline.Failure, 6);
                    yield break;
                }
                float now = Time.realtimeSinceStartup;
                if (now - lastBeat >= config.HeartbeatSeconds)
                {
                    fps = (pipeline.FramesSent - rateFrames) / Mathf.Max(1e-3f, now - rateStart);
                    rateFrames = pipeline.FramesSent;
                    rateStart = now;
                    lastBeat = now;
                    pipeline.SendControl(new Heartbeat { RunId = config.RunId, PlayerId = config.PlayerId, FramesSent = pipeline.FramesSent, FramesPlanned = planned, Fps = fps });
                }
                ReportStatus(false);
                yield return null;
            }
            // Wait for the last readbacks (their callbacks run on this thread), then drain and close.
            while (pipeline.FramesSent + pipeline.FramesFailed < started && pipeline.Failure == null) yield return null;
            framesSent = pipeline.FramesSent;
            pipeline.SendControl(new EndOfStream { RunId = config.RunId, PlayerId = config.PlayerId, FramesSent = framesSent });
            ShutdownPipeline();
            state = "done";
            ReportStatus(true);
            yield return WaitForCloseThenQuit(0);
        }

        // Parts of the scene that live for the whole run.
        sealed class SceneParts
        {
            public AvatarSpawner Avatars;
            public AppearanceRandomizer Appearance;
            public RenderTexture Resolved; // the multisampled target resolved for read back
            public BackgroundRandomizer Background;
            public OccluderRandomizer Occluders;
            public KeypointExtractor Keypoints;
        }

        SceneParts BuildScene(out RenderTexture target)
        {
            SceneSettings s = config.Scene;
            target = new RenderTexture(s.ImageWidth, s.ImageHeight, 24, RenderTextureFormat.ARGB32, RenderTextureReadWrite.sRGB) { antiAliasing = 4 };
            target.Create();
            var resolved = new RenderTexture(s.ImageWidth, s.ImageHeight, 0, RenderTextureFormat.ARGB32, RenderTextureReadWrite.sRGB);
            resolved.Create();
            renderCamera.targetTexture = target;
            renderCamera.nearClipPlane = 0.05f;
            renderCamera.farClipPlane = 100f;
            var providers = new List<IAvatarProvider>(GetComponents<IAvatarProvider>());
            var parts = new SceneParts
            {
                Avatars = new AvatarSpawner(transform, useMannequin, bodyMaterial, avatarPrefabs, providers),
                Appearance = new AppearanceRandomizer(),
                Background = new BackgroundRandomizer(renderCamera, backgroundMaterial, s.Background),
                Occluders = new OccluderRandomizer(transform, bodyMaterial),
                Keypoints = new KeypointExtractor(),
                Resolved = resolved,
            };
            if (config.Poses.Rows.Count == 0 && clips.Count == 0)
                throw new ConfigException("no poses: the config sends none (poses.rows) and the player has no AnimationClips");
            var pusher = new ZmqPusher(config.Endpoint);
            pipeline = new FramePipeline(pusher, config.Encoding, config.JpegQuality);
            return parts;
        }

        // One frame: pose, camera (redrawn until it frames the pose), randomization, render, capture.
        // Returns an error when no pose could be framed after the configured attempts.
        string RenderFrame(long frameId, SceneParts scene, RenderTexture target)
        {
            SceneSettings s = config.Scene;
            var poseRng = new FrameRng(config.Seed, frameId, FrameRng.PoseStream);
            var camRng = new FrameRng(config.Seed, frameId, FrameRng.CameraStream);
            var sceneRng = new FrameRng(config.Seed, frameId, FrameRng.SceneStream);
            HumanoidRig rig = scene.Avatars.Pick(sceneRng);
            BodyRandomizer body;
            if (!bodies.TryGetValue(rig, out body)) bodies[rig] = body = new BodyRandomizer(rig);
            double height, girth;
            body.Apply(sceneRng, s.Body, rig, out height, out girth);
            scene.Appearance.Apply(sceneRng, s.Appearance, rig);
            PoseDriver poses;
            if (!poseDrivers.TryGetValue(rig, out poses)) poseDrivers[rig] = poses = new PoseDriver(rig, clips);

            PoseSource source = null;
            SampledCamera cam = default(SampledCamera);
            bool framed = false;
            for (int attempt = 0; attempt < s.PoseAttempts && !framed; attempt++)
            {
                if (config.Poses.Rows.Count > 0)
                {
                    PoseRow row = config.Poses.Rows[poseRng.NextInt(config.Poses.Rows.Count)];
                    poses.ApplyJoints(row.JointsMm);
                    source = row.Source;
                }
                else
                {
                    source = poses.ApplyClip(poseRng);
                }
                Vec3[] world = UnityFrames.UnityToWorldMm(rig.JointsUnity());
                cam = CameraSampler.SampleForPose(camRng, world, s.Camera, s.ImageWidth, s.ImageHeight, s.BaselineMm, out framed);
            }
            if (!framed)
                return "frame " + frameId + ": no pose out of " + s.PoseAttempts + " could be framed by the camera sampler (min_in_frame_fraction=" + s.Camera.MinInFrameFraction + "); loosen the camera ranges";

            CameraRandomizer.Apply(renderCamera, cam);
            Vector3 camPos = renderCamera.transform.position;
            Vec3 hip = rig.JointsUnity()[0];
            Vec3 toCamera = UnityFrames.UnityToWorldMm(camPos.ToCore()) - UnityFrames.UnityToWorldMm(hip);
            double lightIntensity;
            LightingRandomizer.Apply(sceneRng, s.Lighting, sun, Math.Atan2(toCamera.Y, toCamera.X), out lightIntensity);
            string background = scene.Background.Apply(sceneRng, s.Background, renderCamera, cam);
            int occluders = scene.Occluders.Apply(new FrameRng(config.Seed, frameId, FrameRng.OccluderStream), s.Occluders, rig.JointsUnity(), camPos);

            int[] visibility;
            FrameGroundTruth g = scene.Keypoints.Compute(rig, camPos, cam, s.BaselineMm, out visibility);
            renderCamera.Render();
            Graphics.Blit(target, scene.Resolved); // resolves the multisampling; readback needs a plain texture

            var header = new FrameHeader
            {
                RunId = config.RunId,
                PlayerId = config.PlayerId,
                FrameId = frameId,
                Seed = config.Seed,
                K = cam.K,
                ImageWidth = cam.Width,
                ImageHeight = cam.Height,
                R = cam.R,
                T = cam.T,
                Joints2d = g.Joints2d,
                Joints3d = Protocol.Rows(g.JointsCamera),
                Joints3dWorld = Protocol.Rows(g.JointsWorld),
                Joints2dRight = g.Joints2dRight,
                Visibility = visibility,
                BaselineMm = s.BaselineMm,
                Source = source,
            };
            header.Meta.Add(new KeyValuePair<string, JsonValue>("camera_profile", JsonValue.FromString(s.Camera.Profiles[cam.Profile].Name)));
            header.Meta.Add(new KeyValuePair<string, JsonValue>("background", JsonValue.FromString(background)));
            header.Meta.Add(new KeyValuePair<string, JsonValue>("occluders", JsonValue.FromInteger(occluders)));
            header.Meta.Add(new KeyValuePair<string, JsonValue>("light_intensity", JsonValue.FromNumber(Math.Round(lightIntensity, 4))));
            header.Meta.Add(new KeyValuePair<string, JsonValue>("height_scale", JsonValue.FromNumber(Math.Round(height, 4))));
            header.Meta.Add(new KeyValuePair<string, JsonValue>("girth", JsonValue.FromNumber(Math.Round(girth, 4))));
            header.Meta.Add(new KeyValuePair<string, JsonValue>("avatar", JsonValue.FromString(rig.name)));
            pipeline.Capture(scene.Resolved, header);
            return null;
        }

        Hello MakeHello(long planned)
        {
            var hello = new Hello
            {
                RunId = config.RunId,
                PlayerId = config.PlayerId,
                PlayerKind = "unity",
                FramesPlanned = planned,
                Pid = System.Diagnostics.Process.GetCurrentProcess().Id,
                Host = Environment.MachineName,
            };
            hello.Versions.Add(new KeyValuePair<string, string>("posebridge-unity", PackageVersion));
            hello.Versions.Add(new KeyValuePair<string, string>("unity", Application.unityVersion));
            hello.Versions.Add(new KeyValuePair<string, string>("graphics", SystemInfo.graphicsDeviceVersion.Length > 120 ? SystemInfo.graphicsDeviceVersion.Substring(0, 120) : SystemInfo.graphicsDeviceVersion));
            hello.Capabilities.Encodings = new[] { "jpeg", "png", "raw" };
            hello.Capabilities.Visibility = "raycast";
            hello.Capabilities.MaxWidth = Math.Min(SystemInfo.maxTextureSize, Protocol.MaxImageSide);
            hello.Capabilities.MaxHeight = hello.Capabilities.MaxWidth;
            return hello;
        }

        /// <summary>The player's status for the launcher (bridge/mlagents_channels.py PlayerStatus).</summary>
        void ReportStatus(bool urgent, string code = null, string message = null)
        {
            if (agent == null || channel == null) return;
            agent.FramesSent = framesSent;
            agent.FramesPlanned = config != null ? config.FrameCount : 0;
            agent.Fps = fps;
            agent.Done = state == "done";
            var w = new JsonWriter();
            w.BeginObject();
            w.Name("control").Value(RunConfig.ControlVersion);
            w.Name("type").Value("status");
            w.Name("player_id").Value(config != null ? config.PlayerId : "");
            w.Name("state").Value(state);
            w.Name("frames_sent").Value(agent.FramesSent);
            w.Name("frames_planned").Value(agent.FramesPlanned);
            w.Name("fps").Value(Math.Round(fps, 3));
            w.Name("code").Value(code ?? "");
            w.Name("message").Value(message ?? "");
            w.EndObject();
            if (agent.Tick(urgent)) channel.Send(w.ToString());
        }

        void Fail(string code, string message, int exitCode)
        {
            Debug.LogError("posebridge: " + code + ": " + message);
            state = "failed";
            if (pipeline != null && config != null)
                pipeline.SendControl(new ErrorMessage { RunId = config.RunId, PlayerId = config.PlayerId, Code = code, Message = message.Length > 4000 ? message.Substring(0, 4000) : message, Fatal = true });
            ShutdownPipeline();
            ReportStatus(true, code, message);
            StartCoroutine(WaitForCloseThenQuit(exitCode));
        }

        // A launched player keeps exchanging until Python has read the final status and closes the
        // environment (the Academy then quits the application); the timeout covers a vanished launcher.
        IEnumerator WaitForCloseThenQuit(int exitCode)
        {
            float deadline = Time.realtimeSinceStartup + (args != null && args.Controlled && Academy.IsInitialized && Academy.Instance.IsCommunicatorOn ? closeTimeoutSeconds : 0f);
            while (Time.realtimeSinceStartup < deadline)
            {
                ReportStatus(false);
                yield return null;
            }
            Application.Quit(exitCode);
        }

        void ShutdownPipeline()
        {
            if (pipeline != null)
            {
                pipeline.Dispose();
                pipeline = null;
                ZmqPusher.Cleanup(); // after every socket is disposed, or quitting hangs
            }
        }

        void OnDestroy()
        {
            ShutdownPipeline();
            foreach (PoseDriver d in poseDrivers.Values) d.Dispose();
            if (channel != null) SideChannelManager.UnregisterSideChannel(channel);
        }
    }
}
