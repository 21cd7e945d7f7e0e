// The run config a player receives from the launcher over the GeneratorConfigChannel (or from a file
// given on the command line): bridge/mlagents_channels.py PlayerAssignment, control version 1.
// Top-level keys are checked strictly; inside "scene" (generator.scene.SceneConfig, already validated
// by Python) the player reads the sections it uses and ignores the rest, so the built-in player's
// scene options can grow without breaking Unity builds.
using System;
using System.Collections.Generic;
using System.Globalization;

namespace PoseBridge.Core
{
    /// <summary>A bad config; the message names the origin, the key path and the problem.</summary>
    public class ConfigException : Exception
    {
        public ConfigException(string message) : base(message) { }
    }

    public sealed class BodySettings
    {
        public double MirrorProbability = 0.5;
        public double[] HeightScale = { 0.92, 1.08 };
        public double[] Girth = { 0.85, 1.25 };
    }

    public sealed class AppearanceSettings
    {
        public double[] ClothSaturation = { 0.0, 0.9 };
        public double[] ClothValue = { 0.08, 0.95 };
    }

    public sealed class LightingSettings
    {
        public double[] ElevationDeg = { 10, 80 };
        public double[] AzimuthFromCameraDeg = { -120, 120 };
        public double[] Intensity = { 0.5, 1.3 };
        public double[] Ambient = { 0.15, 0.55 };
        public double Tint = 0.12;
    }

    public sealed class BackgroundSettings
    {
        public Dictionary<string, double> Weights = new Dictionary<string, double> { { "solid", 1 }, { "gradient", 1 }, { "noise", 2 }, { "photo", 4 } };
        public string PhotoDir;
    }

    public sealed class OccluderSettings
    {
        public double Probability = 0.3;
        public int[] Count = { 1, 2 };
        public Dictionary<string, double> Weights = new Dictionary<string, double> { { "box", 1 }, { "cylinder", 1 } };
        public double[] HalfExtentMm = { 60, 300 };
        public double[] TowardCamera = { 0.15, 0.6 };
    }

    public sealed class SceneSettings
    {
        public int ImageWidth = 256, ImageHeight = 256;
        public CameraSamplerSettings Camera = CameraSamplerSettings.Default();
        public double BaselineMm = 500.0;
        public BodySettings Body = new BodySettings();
        public AppearanceSettings Appearance = new AppearanceSettings();
        public LightingSettings Lighting = new LightingSettings();
        public BackgroundSettings Background = new BackgroundSettings();
        public OccluderSettings Occluders = new OccluderSettings();
        public int PoseAttempts = 20;
    }

    /// <summary>One pose sent by Python: 17 world joints (mm) and where it came from.</summary>
    public sealed class PoseRow
    {
        public Vec3[] JointsMm;
        public PoseSource Source;
    }

    public sealed class PoseSettings
    {
        /// <summary>The launcher's pose source (a path, "bundled", "prior" or "unity-clips").</summary>
        public string Source = "unity-clips";
        /// <summary>Poses sent by Python; when empty, a Unity player samples its AnimationClips.</summary>
        public List<PoseRow> Rows = new List<PoseRow>();
    }

    public sealed class RunConfig
    {
        public const int ControlVersion = 1;

        public string RunId, PlayerId, Endpoint;
        public int WorkerId;
        public long Seed;
        /// <summary>Half-open [start, stop) frame-id ranges this player must produce, sorted and disjoint
        /// (sent as "0-99,120,200-299", inclusive, like bridge/workplan.py).</summary>
        public List<long[]> Frames = new List<long[]>();
        public string Encoding = "jpeg";
        public int JpegQuality = 90;
        public double HeartbeatSeconds = 1.0;
        public SceneSettings Scene = new SceneSettings();
        public PoseSettings Poses = new PoseSettings();
        /// <summary>Player-specific options, passed through untouched (may be an empty object).</summary>
        public JsonValue Player = JsonValue.NewObject();

        static readonly string[] TopKeys =
        {
            "control", "type", "run_id", "player_id", "worker_id", "seed", "endpoint", "frames", "encoding",
            "jpeg_quality", "heartbeat_s", "scene", "poses", "player",
        };

        public long FrameCount
        {
            get
            {
                long n = 0;
                foreach (long[] r in Frames) n += r[1] - r[0];
                return n;
            }
        }

        /// <summary>Every frame id to produce, in order.</summary>
        public IEnumerable<long> FrameIds()
        {
            foreach (long[] r in Frames)
                for (long f = r[0]; f < r[1]; f++) yield return f;
        }

        /// <summary>Parses and checks a config; <paramref name="origin"/> names it in errors (a file, "side channel").</summary>
        public static RunConfig Parse(string json, string origin)
        {
            JsonValue root;
            try
            {
                root = JsonValue.Parse(json);
            }
            catch (JsonException e)
            {
                throw new ConfigException(origin + ": not valid JSON: " + e.Message);
            }
            var r = new ConfigReader(origin);
            r.Expect(root, "", JsonKind.Object);
            r.NoUnknownKeys(root, "", TopKeys);
            var c = new RunConfig();
            long control = r.Integer(root, "", "control", ControlVersion);
            if (control != ControlVersion) throw r.Fail("control", "unsupported control version " + control + " (this player speaks " + ControlVersion + ")");
            string type = r.String(root, "", "type", "config");
            if (type != "config") throw r.Fail("type", "expected \"config\", got \"" + type + "\"");
            c.RunId = r.RequiredString(root, "", "run_id");
            c.PlayerId = r.RequiredString(root, "", "player_id");
            try
            {
                Protocol.CheckId("run_id", c.RunId);
                Protocol.CheckId("player_id", c.PlayerId);
            }
            catch (ProtocolException e)
            {
                throw new ConfigException(origin + ": " + e.Message);
            }
            c.WorkerId = (int)r.Integer(root, "", "worker_id", 0, 0, int.MaxValue);
            c.Seed = r.Integer(root, "", "seed", 0, 0, long.MaxValue);
            c.Endpoint = r.RequiredString(root, "", "endpoint");
            if (!(c.Endpoint.StartsWith("tcp://") || c.Endpoint.StartsWith("ipc://") || c.Endpoint.StartsWith("inproc://")))
                throw r.Fail("endpoint", "must be a ZeroMQ endpoint (tcp://host:port or ipc://path), got \"" + c.Endpoint + "\"");
            c.Frames = ReadFrames(r, root);
            c.Encoding = r.String(root, "", "encoding", "jpeg");
            try
            {
                Protocol.CheckEncoding(c.Encoding);
            }
            catch (ProtocolException e)
            {
                throw r.Fail("encoding", e.Message);
            }
            c.JpegQuality = (int)r.Integer(root, "", "jpeg_quality", 90, 1, 100);
            c.HeartbeatSeconds = r.Number(root, "", "heartbeat_s", 1.0, 0.05, 3600);
            JsonValue scene = root.Get("scene");
            if (scene != null) c.Scene = ReadScene(r, scene, "scene");
            JsonValue poses = root.Get("poses");
            if (poses != null) c.Poses = ReadPoses(r, poses, "poses");
            JsonValue player = root.Get("player");
            if (player != null)
            {
                r.Expect(player, "player", JsonKind.Object);
                c.Player = player;
            }
            return c;
        }

        // "0-99,120,200-299": sorted inclusive id ranges, the format of bridge/workplan.py format_id_ranges.
        static List<long[]> ReadFrames(ConfigReader r, JsonValue root)
        {
            string spec = r.RequiredString(root, "", "frames");
            var list = new List<long[]>();
            long last = -1;
            string[] items = spec.Split(',');
            for (int i = 0; i < items.Length; i++)
            {
                string item = items[i].Trim();
                if (item.Length == 0) continue;
                int dash = item.IndexOf('-', 1);
                long a, b;
                bool ok;
                if (dash < 0)
                {
                    ok = long.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out a);
                    b = a;
                }
                else
                {
                    ok = long.TryParse(item.Substring(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out a);
                    ok &= long.TryParse(item.Substring(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out b);
                }
                if (!ok || b < a) throw r.Fail("frames", "item " + (i + 1) + " \"" + item + "\" is not N or N-M with 0 <= N <= M");
                if (a <= last) throw r.Fail("frames", "item " + (i + 1) + " \"" + item + "\": ids must be sorted and unique");
                last = b;
                if (list.Count > 0 && list[list.Count - 1][1] == a) list[list.Count - 1][1] = b + 1;
                else list.Add(new[] { a, b + 1 });
            }
            return list;
        }

        static SceneSettings ReadScene(ConfigReader r, JsonValue v, string path)
        {
            r.Expect(v, path, JsonKind.Object);
            var s = new SceneSettings();
            JsonValue size = v.Get("image_size");
            if (size != null)
            {
                long[] wh = r.IntegerPair(size, path + ".image_size", 1, Protocol.MaxImageSide);
                s.ImageWidth = (int)wh[0];
                s.ImageHeight = (int)wh[1];
            }
            s.BaselineMm = r.Number(v, path, "baseline_mm", s.BaselineMm, 1e-9, 1e9);
            s.PoseAttempts = (int)r.Integer(v, path, "pose_attempts", s.PoseAttempts, 1, 100000);
            JsonValue cam = v.Get("camera");
            if (cam != null) s.Camera = ReadCamera(r, cam, path + ".camera");
            JsonValue body = v.Get("body");
            if (body != null)
            {
                string p = path + ".body";
                r.Expect(body, p, JsonKind.Object);
                s.Body.MirrorProbability = r.Number(body, p, "mirror_probability", s.Body.MirrorProbability, 0, 1);
                s.Body.HeightScale = r.Range(body, p, "height_scale", s.Body.HeightScale, 0.1, 10);
                s.Body.Girth = r.Range(body, p, "girth", s.Body.Girth, 0.1, 10);
            }
            JsonValue app = v.Get("appearance");
            if (app != null)
            {
                string p = path + ".appearance";
                r.Expect(app, p, JsonKind.Object);
                s.Appearance.ClothSaturation = r.Range(app, p, "cloth_saturation", s.Appearance.ClothSaturation, 0, 1);
                s.Appearance.ClothValue = r.Range(app, p, "cloth_value", s.Appearance.ClothValue, 0, 1);
            }
            JsonValue light = v.Get("lighting");
            if (light != null)
            {
                string p = path + ".lighting";
                r.Expect(light, p, JsonKind.Object);
                s.Lighting.ElevationDeg = r.Range(light, p, "elevation_deg", s.Lighting.ElevationDeg, -90, 90);
                s.Lighting.AzimuthFromCameraDeg = r.Range(light, p, "azimuth_from_camera_deg", s.Lighting.AzimuthFromCameraDeg, -360, 360);
                s.Lighting.Intensity = r.Range(light, p, "intensity", s.Lighting.Intensity, 0, 1e6);
                s.Lighting.Ambient = r.Range(light, p, "ambient", s.Lighting.Ambient, 0, 1e6);
                s.Lighting.Tint = r.Number(light, p, "tint", s.Lighting.Tint, 0, 0.5);
            }
            JsonValue bg = v.Get("background");
            if (bg != null)
            {
                string p = path + ".background";
                r.Expect(bg, p, JsonKind.Object);
                if (bg.Has("weights")) s.Background.Weights = r.Weights(bg.Get("weights"), p + ".weights");
                JsonValue dir = bg.Get("photo_dir");
                s.Background.PhotoDir = dir == null || dir.Kind == JsonKind.Null ? null : r.RequiredString(bg, p, "photo_dir");
            }
            JsonValue occ = v.Get("occluders");
            if (occ != null)
            {
                string p = path + ".occluders";
                r.Expect(occ, p, JsonKind.Object);
                s.Occluders.Probability = r.Number(occ, p, "probability", s.Occluders.Probability, 0, 1);
                if (occ.Has("count"))
                {
                    long[] n = r.IntegerPair(occ.Get("count"), p + ".count", 0, 16);
                    if (n[0] > n[1]) throw r.Fail(p + ".count", "low " + n[0] + " > high " + n[1]);
                    s.Occluders.Count = new[] { (int)n[0], (int)n[1] };
                }
                if (occ.Has("weights")) s.Occluders.Weights = r.Weights(occ.Get("weights"), p + ".weights");
                s.Occluders.HalfExtentMm = r.Range(occ, p, "half_extent_mm", s.Occluders.HalfExtentMm, 1, 1e6);
                s.Occluders.TowardCamera = r.Range(occ, p, "toward_camera", s.Occluders.TowardCamera, 0, 0.95);
            }
            return s;
        }

        static CameraSamplerSettings ReadCamera(ConfigReader r, JsonValue v, string path)
        {
            r.Expect(v, path, JsonKind.Object);
            var c = new CameraSamplerSettings();
            c.MinInFrameFraction = r.Number(v, path, "min_in_frame_fraction", c.MinInFrameFraction, 0, 1);
            c.MaxRounds = (int)r.Integer(v, path, "max_rounds", c.MaxRounds, 1, 100000);
            JsonValue profiles = v.Get("profiles");
            if (profiles == null) throw r.Fail(path + ".profiles", "required: at least one camera profile");
            r.Expect(profiles, path + ".profiles", JsonKind.Array);
            if (profiles.Items.Count == 0) throw r.Fail(path + ".profiles", "needs at least one camera profile");
            for (int i = 0; i < profiles.Items.Count; i++)
            {
                string p = path + ".profiles[" + i + "]";
                JsonValue pv = profiles.Items[i];
                r.Expect(pv, p, JsonKind.Object);
                var prof = new CameraProfileSettings();
                prof.Name = r.RequiredString(pv, p, "name");
                prof.Weight = r.Number(pv, p, "weight", 1.0, 1e-12, 1e12);
                prof.DistanceMm = r.RequiredRange(pv, p, "distance_mm", 1e-9, 1e9);
                prof.AzimuthDeg = r.Range(pv, p, "azimuth_deg", prof.AzimuthDeg, -3600, 3600);
                prof.ElevationDeg = r.RequiredRange(pv, p, "elevation_deg", -89, 89);
                prof.RollDeg = r.Range(pv, p, "roll_deg", prof.RollDeg, -180, 180);
                bool hasFov = pv.Has("fov_deg") && pv.Get("fov_deg").Kind != JsonKind.Null;
                bool hasFocal = pv.Has("focal_px") && pv.Get("focal_px").Kind != JsonKind.Null;
                if (hasFov == hasFocal) throw r.Fail(p, "give exactly one of fov_deg and focal_px");
                prof.FovDeg = hasFov ? r.RequiredRange(pv, p, "fov_deg", 1, 179) : null;
                prof.FocalPx = hasFocal ? r.RequiredRange(pv, p, "focal_px", 1e-6, 1e9) : null;
                prof.PrincipalPointJitter = r.Number(pv, p, "principal_point_jitter", 0, 0, 0.25);
                prof.LookAtJitterMm = r.Number(pv, p, "look_at_jitter_mm", 0, 0, 1e9);
                JsonValue sizes = pv.Get("image_sizes");
                if (sizes == null) throw r.Fail(p + ".image_sizes", "required: [width, height] choices");
                r.Expect(sizes, p + ".image_sizes", JsonKind.Array);
                if (sizes.Items.Count == 0) throw r.Fail(p + ".image_sizes", "needs at least one [width, height]");
                prof.ImageSizes = new List<int[]>();
                for (int k = 0; k < sizes.Items.Count; k++)
                {
                    long[] wh = r.IntegerPair(sizes.Items[k], p + ".image_sizes[" + k + "]", 1, Protocol.MaxImageSide);
                    prof.ImageSizes.Add(new[] { (int)wh[0], (int)wh[1] });
                }
                c.Profiles.Add(prof);
            }
            return c;
        }

        static PoseSettings ReadPoses(ConfigReader r, JsonValue v, string path)
        {
            r.Expect(v, path, JsonKind.Object);
            var s = new PoseSettings();
            s.Source = r.String(v, path, "source", s.Source);
            JsonValue rows = v.Get("rows");
            if (rows == null) return s;
            r.Expect(rows, path + ".rows", JsonKind.Array);
            for (int i = 0; i < rows.Items.Count; i++)
            {
                string p = path + ".rows[" + i + "]";
                JsonValue row = rows.Items[i];
                r.Expect(row, p, JsonKind.Object);
                JsonValue joints = row.Get("joints_mm");
                if (joints == null) throw r.Fail(p + ".joints_mm", "required: 17 [x, y, z] world joints in mm");
                r.Expect(joints, p + ".joints_mm", JsonKind.Array);
                if (joints.Items.Count != H36m.NumJoints) throw r.Fail(p + ".joints_mm", "needs " + H36m.NumJoints + " joints, got " + joints.Items.Count);
                var pr = new PoseRow { JointsMm = new Vec3[H36m.NumJoints] };
                for (int j = 0; j < H36m.NumJoints; j++) pr.JointsMm[j] = r.Vector3(joints.Items[j], p + ".joints_mm[" + j + "]");
                string clip = r.String(row, p, "clip", null);
                pr.Source = clip == null
                    ? PoseSource.Prior()
                    : PoseSource.FromClip(clip, r.Integer(row, p, "frame", 0, 0, long.MaxValue), r.String(row, p, "subject", ""), r.String(row, p, "action", ""));
                s.Rows.Add(pr);
            }
            return s;
        }
    }

    /// <summary>Typed reads from parsed JSON with errors naming origin and key path.</summary>
    public sealed class ConfigReader
    {
        readonly string origin;

        public ConfigReader(string origin) { this.origin = origin; }

        public ConfigException Fail(string path, string problem)
        {
            return new ConfigException(origin + ": " + (path.Length > 0 ? path : "<root>") + ": " + problem);
        }

        static string Join(string path, string key) { return path.Length == 0 ? key : path + "." + key; }

        static string Describe(JsonValue v)
        {
            string s = v.ToJson();
            return s.Length > 60 ? s.Substring(0, 57) + "..." : s;
        }

        public void Expect(JsonValue v, string path, JsonKind kind)
        {
            if (v.Kind != kind) throw Fail(path, "expected " + kind.ToString().ToLowerInvariant() + ", got " + Describe(v));
        }

        public void NoUnknownKeys(JsonValue obj, string path, string[] known)
        {
            foreach (KeyValuePair<string, JsonValue> m in obj.Members)
                if (Array.IndexOf(known, m.Key) < 0)
                    throw Fail(Join(path, m.Key), "unknown key; known keys: " + string.Join(", ", known));
        }

        public string RequiredString(JsonValue obj, string path, string key)
        {
            JsonValue v = obj.Get(key);
            if (v == null) throw Fail(Join(path, key), "required");
            if (v.Kind != JsonKind.String) throw Fail(Join(path, key), "expected a string, got " + Describe(v));
            return v.StringValue;
        }

        public string String(JsonValue obj, string path, string key, string fallback)
        {
            return obj.Has(key) && obj.Get(key).Kind != JsonKind.Null ? RequiredString(obj, path, key) : fallback;
        }

        public double ToNumber(JsonValue v, string path, double lo, double hi)
        {
            if (v.Kind != JsonKind.Number) throw Fail(path, "expected a number, got " + Describe(v));
            if (v.NumberValue < lo || v.NumberValue > hi)
                throw Fail(path, "must lie within [" + lo.ToString(CultureInfo.InvariantCulture) + ", " + hi.ToString(CultureInfo.InvariantCulture) + "], got " + Describe(v));
            return v.NumberValue;
        }

        public double Number(JsonValue obj, string path, string key, double fallback, double lo, double hi)
        {
            JsonValue v = obj.Get(key);
            return v == null ? fallback : ToNumber(v, Join(path, key), lo, hi);
        }

        public long ToInteger(JsonValue v, string path, long lo, long hi)
        {
            if (v.Kind != JsonKind.Number || !v.IsInteger) throw Fail(path, "expected an integer, got " + Describe(v));
            if (v.IntegerValue < lo || v.IntegerValue > hi) throw Fail(path, "must lie within [" + lo + ", " + hi + "], got " + v.IntegerValue);
            return v.IntegerValue;
        }

        public long Integer(JsonValue obj, string path, string key, long fallback, long lo = long.MinValue, long hi = long.MaxValue)
        {
            JsonValue v = obj.Get(key);
            return v == null ? fallback : ToInteger(v, Join(path, key), lo, hi);
        }

        public long[] IntegerPair(JsonValue v, string path, long lo, long hi)
        {
            if (v.Kind != JsonKind.Array || v.Items.Count != 2) throw Fail(path, "expected a pair of integers, got " + Describe(v));
            return new[] { ToInteger(v.Items[0], path + "[0]", lo, hi), ToInteger(v.Items[1], path + "[1]", lo, hi) };
        }

        public double[] RequiredRange(JsonValue obj, string path, string key, double lo, double hi)
        {
            JsonValue v = obj.Get(key);
            string p = Join(path, key);
            if (v == null) throw Fail(p, "required: [low, high]");
            if (v.Kind != JsonKind.Array || v.Items.Count != 2) throw Fail(p, "expected [low, high], got " + Describe(v));
            var r = new[] { ToNumber(v.Items[0], p + "[0]", lo, hi), ToNumber(v.Items[1], p + "[1]", lo, hi) };
            if (r[0] > r[1]) throw Fail(p, "low " + Describe(v.Items[0]) + " > high " + Describe(v.Items[1]));
            return r;
        }

        public double[] Range(JsonValue obj, string path, string key, double[] fallback, double lo, double hi)
        {
            return obj.Has(key) ? RequiredRange(obj, path, key, lo, hi) : fallback;
        }

        public Vec3 Vector3(JsonValue v, string path)
        {
            if (v.Kind != JsonKind.Array || v.Items.Count != 3) throw Fail(path, "expected [x, y, z], got " + Describe(v));
            return new Vec3(ToNumber(v.Items[0], path + "[0]", -1e12, 1e12), ToNumber(v.Items[1], path + "[1]", -1e12, 1e12), ToNumber(v.Items[2], path + "[2]", -1e12, 1e12));
        }

        public Dictionary<string, double> Weights(JsonValue v, string path)
        {
            Expect(v, path, JsonKind.Object);
            var d = new Dictionary<string, double>();
            double total = 0;
            foreach (KeyValuePair<string, JsonValue> m in v.Members)
            {
                d[m.Key] = ToNumber(m.Value, path + "." + m.Key, 0, 1e12);
                total += d[m.Key];
            }
            if (!(total > 0)) throw Fail(path, "needs a positive weight");
            return d;
        }
    }
}
