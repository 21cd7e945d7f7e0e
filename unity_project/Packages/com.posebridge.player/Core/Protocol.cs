// Wire protocol v1.1 (bridge/protocol.py, bridge/schema/*.schema.json, docs/protocol.md): the messages a
// player sends to the collector. A frame is the ZeroMQ multipart message [header, image], or
// [header, image, mask] when the header has a Mask (1.1: the person mask as a PNG, MaskPng.cs); control
// messages (hello, heartbeat, end, error) are [header]. Headers are compact UTF-8 JSON laid out exactly
// as Python writes them: frames as bridge.protocol.encode_frame_header (numbers rounded to float32, the
// precision the collector stores, and written as "%.9g"), control messages in the pydantic models'
// field order.
using System;
using System.Collections.Generic;
using System.Text.RegularExpressions;

namespace PoseBridge.Core
{
    /// <summary>A message that would break the protocol; thrown before anything is sent.</summary>
    public class ProtocolException : Exception
    {
        public ProtocolException(string message) : base(message) { }
    }

    public static class Protocol
    {
        public const int Major = 1;
        public const int Minor = 1;
        public const string Version = "1.1";
        public const int MaxImageSide = 16384;
        public const int FrameParts = 2;
        public const int ControlParts = 1;
        static readonly Regex IdPattern = new Regex("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$");
        static readonly Regex CodePattern = new Regex("^[a-z][a-z0-9_]{0,63}$");

        public static readonly string[] Encodings = { "jpeg", "png", "raw" };

        public static void CheckId(string field, string value)
        {
            if (value == null || !IdPattern.IsMatch(value))
                throw new ProtocolException(field + ": must match " + IdPattern + ", got \"" + value + "\"");
        }

        public static void CheckCode(string value)
        {
            if (value == null || !CodePattern.IsMatch(value))
                throw new ProtocolException("code: must match " + CodePattern + ", got \"" + value + "\"");
        }

        public static void CheckEncoding(string value)
        {
            if (Array.IndexOf(Encodings, value) < 0) throw new ProtocolException("encoding: must be jpeg, png or raw, got \"" + value + "\"");
        }

        internal static void CheckNonNegative(string field, long value)
        {
            if (value < 0) throw new ProtocolException(field + ": must be >= 0, got " + value);
        }

        internal static void CheckSide(string field, int value)
        {
            if (value < 1 || value > MaxImageSide) throw new ProtocolException(field + ": must lie in [1, " + MaxImageSide + "], got " + value);
        }

        /// <summary>Frame numbers travel as float32: finite and within float32's range.</summary>
        internal static void CheckFinite(string field, double value)
        {
            if (!Num.IsFinite(value)) throw new ProtocolException(field + ": must be finite, got " + value);
            if (Math.Abs(value) > float.MaxValue) throw new ProtocolException(field + ": beyond float32's range, got " + value);
        }

        internal static void CheckJoints(string field, double[][] joints, int dim)
        {
            if (joints == null || joints.Length != H36m.NumJoints)
                throw new ProtocolException(field + ": needs " + H36m.NumJoints + " joints");
            for (int j = 0; j < joints.Length; j++)
            {
                if (joints[j] == null || joints[j].Length != dim) throw new ProtocolException(field + "[" + j + "]: needs " + dim + " numbers");
                for (int d = 0; d < dim; d++) CheckFinite(field + "[" + j + "][" + d + "]", joints[j][d]);
            }
        }

        /// <summary>Joints (17 Vec3) as nested arrays.</summary>
        public static double[][] Rows(Vec3[] joints)
        {
            var a = new double[joints.Length][];
            for (int i = 0; i < joints.Length; i++) a[i] = joints[i].ToArray();
            return a;
        }
    }

    /// <summary>CRC-32 (IEEE 802.3, reflected 0xEDB88320), the value zlib.crc32 and PNG compute.</summary>
    public static class Crc32
    {
        static readonly uint[] Table = BuildTable();

        static uint[] BuildTable()
        {
            var t = new uint[256];
            for (uint i = 0; i < 256; i++)
            {
                uint c = i;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                t[i] = c;
            }
            return t;
        }

        public static uint Compute(byte[] data) { return Compute(data, 0, data.Length); }

        public static uint Compute(byte[] data, int offset, int count)
        {
            uint c = 0xFFFFFFFFu;
            int end = offset + count;
            for (int i = offset; i < end; i++) c = Table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
            return c ^ 0xFFFFFFFFu;
        }
    }

    /// <summary>The image part's description (protocol "image" object).</summary>
    public sealed class ImageInfo
    {
        public string Encoding = "jpeg";
        public int Height, Width, Channels = 3;
        public long SizeBytes;
        public uint Crc32;

        /// <summary>Describes the encoded bytes that will travel as the frame's second part.</summary>
        public static ImageInfo Describe(string encoding, int width, int height, int channels, byte[] data, int length)
        {
            return new ImageInfo
            {
                Encoding = encoding,
                Width = width,
                Height = height,
                Channels = channels,
                SizeBytes = length,
                Crc32 = Core.Crc32.Compute(data, 0, length),
            };
        }

        internal void Validate()
        {
            Protocol.CheckEncoding(Encoding);
            Protocol.CheckSide("image.shape[0]", Height);
            Protocol.CheckSide("image.shape[1]", Width);
            if (Channels != 1 && Channels != 3 && Channels != 4) throw new ProtocolException("image.shape[2]: must be 1, 3 or 4, got " + Channels);
            if (SizeBytes < 1) throw new ProtocolException("image.size_bytes: must be >= 1, got " + SizeBytes);
        }

        internal void ValidateRawSize()
        {
            if (Encoding == "raw" && SizeBytes != (long)Height * Width * Channels)
                throw new ProtocolException("image.size_bytes: raw " + Height + "x" + Width + "x" + Channels + " needs " + ((long)Height * Width * Channels) + " bytes, got " + SizeBytes);
        }

        // Field order of bridge.protocol.ImageInfo (pydantic's model_dump_json).
        internal void Write(JsonWriter w)
        {
            w.BeginObject();
            w.Name("encoding").Value(Encoding);
            w.Name("shape").BeginArray().Value(Height).Value(Width).Value(Channels).EndArray();
            w.Name("size_bytes").Value(SizeBytes);
            w.Name("crc32").Value((long)Crc32);
            w.EndObject();
        }
    }

    /// <summary>The person mask's description (protocol 1.1 "mask" object): the frame's third part, an
    /// 8-bit greyscale PNG with 1 where the person is visible and 0 elsewhere (MaskPng.Encode).</summary>
    public sealed class MaskInfo
    {
        public const string Encoding = "png";
        public int Height, Width;
        public long SizeBytes;
        public uint Crc32;

        /// <summary>Describes the PNG bytes that will travel as the frame's third part.</summary>
        public static MaskInfo Describe(int width, int height, byte[] data, int length)
        {
            return new MaskInfo { Width = width, Height = height, SizeBytes = length, Crc32 = Core.Crc32.Compute(data, 0, length) };
        }

        internal void Validate()
        {
            Protocol.CheckSide("mask.shape[0]", Height);
            Protocol.CheckSide("mask.shape[1]", Width);
            if (SizeBytes < 1) throw new ProtocolException("mask.size_bytes: must be >= 1, got " + SizeBytes);
        }

        // Field order of bridge.protocol.MaskInfo.
        internal void Write(JsonWriter w)
        {
            w.BeginObject();
            w.Name("encoding").Value(Encoding);
            w.Name("shape").BeginArray().Value(Height).Value(Width).EndArray();
            w.Name("size_bytes").Value(SizeBytes);
            w.Name("crc32").Value((long)Crc32);
            w.EndObject();
        }
    }

    /// <summary>Where the pose came from: a clip frame, or the pose prior (Clip == null).</summary>
    public sealed class PoseSource
    {
        public string Clip;
        public long ClipFrame;
        public string Subject = "";
        public string Action = "";

        public static PoseSource Prior() { return new PoseSource(); }

        public static PoseSource FromClip(string clip, long frame, string subject, string action)
        {
            return new PoseSource { Clip = clip, ClipFrame = frame, Subject = subject ?? "", Action = action ?? "" };
        }

        internal void Validate()
        {
            if (Clip == null) return;
            if (Clip.Length < 1 || Clip.Length > 256) throw new ProtocolException("source.clip: needs 1-256 characters");
            if (Subject.Length > 256 || Action.Length > 256) throw new ProtocolException("source.subject/action: at most 256 characters");
            Protocol.CheckNonNegative("source.frame", ClipFrame);
        }

        internal void Write(JsonWriter w)
        {
            w.BeginObject();
            if (Clip == null)
            {
                w.Name("kind").Value("prior");
            }
            else
            {
                w.Name("kind").Value("clip");
                w.Name("clip").Value(Clip);
                w.Name("frame").Value(ClipFrame);
                w.Name("subject").Value(Subject);
                w.Name("action").Value(Action);
            }
            w.EndObject();
        }
    }

    /// <summary>Fields every message carries.</summary>
    public abstract class Envelope
    {
        public string RunId, PlayerId;
        public long Seq;

        internal void ValidateEnvelope()
        {
            Protocol.CheckId("run_id", RunId);
            Protocol.CheckId("player_id", PlayerId);
            Protocol.CheckNonNegative("seq", Seq);
        }

        /// <summary>The header as UTF-8 JSON; validates first.</summary>
        public byte[] Encode()
        {
            Validate();
            var w = new JsonWriter();
            Write(w);
            return w.ToUtf8();
        }

        public string EncodeString()
        {
            Validate();
            var w = new JsonWriter();
            Write(w);
            return w.ToString();
        }

        public abstract void Validate();

        protected abstract void Write(JsonWriter w);

        // Control messages: pydantic's field order, envelope first, then "type".
        protected void WriteEnvelope(JsonWriter w, string type)
        {
            w.Name("protocol").Value(Protocol.Version);
            w.Name("run_id").Value(RunId);
            w.Name("player_id").Value(PlayerId);
            w.Name("seq").Value(Seq);
            w.Name("type").Value(type);
        }
    }

    /// <summary>One rendered frame with its ground truth; part 1 of [header, image], or of
    /// [header, image, mask] when Mask is set.</summary>
    public sealed class FrameHeader : Envelope
    {
        public long FrameId, Seed;
        public Intrinsics K;
        public int ImageWidth, ImageHeight;
        public Mat3 R;
        public Vec3 T;
        public double[][] Joints2d, Joints3d, Joints3dWorld, Joints2dRight;
        public int[] Visibility;
        public double BaselineMm;
        public PoseSource Source = PoseSource.Prior();
        public ImageInfo Image;
        /// <summary>The person mask part (protocol 1.1), or null: no mask part, and no "mask" field.</summary>
        public MaskInfo Mask;
        /// <summary>Free-form scalars (bool, integer, float or string values), written in order.</summary>
        public List<KeyValuePair<string, JsonValue>> Meta = new List<KeyValuePair<string, JsonValue>>();

        /// <summary>How many message parts this frame is sent as: 2, or 3 with a mask.</summary>
        public int Parts { get { return Mask == null ? Protocol.FrameParts : Protocol.FrameParts + 1; } }

        public override void Validate()
        {
            ValidateEnvelope();
            Protocol.CheckNonNegative("frame_id", FrameId);
            Protocol.CheckNonNegative("seed", Seed);
            Protocol.CheckSide("camera.image_size[0]", ImageWidth);
            Protocol.CheckSide("camera.image_size[1]", ImageHeight);
            foreach (double v in new[] { K.Fx, K.Fy, K.Cx, K.Cy }) Protocol.CheckFinite("camera.K", v);
            foreach (double v in new[] { R.M00, R.M01, R.M02, R.M10, R.M11, R.M12, R.M20, R.M21, R.M22 }) Protocol.CheckFinite("camera.R", v);
            if (!T.IsFinite) throw new ProtocolException("camera.t: must be finite");
            Protocol.CheckJoints("joints_2d", Joints2d, 2);
            Protocol.CheckJoints("joints_3d", Joints3d, 3);
            Protocol.CheckJoints("joints_3d_world", Joints3dWorld, 3);
            Protocol.CheckJoints("joints_2d_right", Joints2dRight, 2);
            if (Visibility == null || Visibility.Length != H36m.NumJoints) throw new ProtocolException("visibility: needs " + H36m.NumJoints + " values");
            foreach (int v in Visibility)
                if (v < 0 || v > 2) throw new ProtocolException("visibility: values must be 0, 1 or 2, got " + v);
            if (!(BaselineMm > 0) || !Num.IsFinite(BaselineMm)) throw new ProtocolException("baseline_mm: must be finite and positive, got " + BaselineMm);
            if (Source == null) throw new ProtocolException("source: required");
            Source.Validate();
            if (Image == null) throw new ProtocolException("image: required");
            Image.Validate();
            if (Image.Width != ImageWidth || Image.Height != ImageHeight)
                throw new ProtocolException("image.shape " + Image.Height + "x" + Image.Width + " does not match camera.image_size " + ImageWidth + "x" + ImageHeight);
            Image.ValidateRawSize();
            if (Mask != null)
            {
                Mask.Validate();
                if (Mask.Width != ImageWidth || Mask.Height != ImageHeight)
                    throw new ProtocolException("mask.shape " + Mask.Height + "x" + Mask.Width + " does not match camera.image_size " + ImageWidth + "x" + ImageHeight);
            }
            foreach (KeyValuePair<string, JsonValue> m in Meta)
                if (m.Value == null || m.Value.Kind == JsonKind.Null || m.Value.Kind == JsonKind.Array || m.Value.Kind == JsonKind.Object)
                    throw new ProtocolException("meta." + m.Key + ": must be a bool, number or string");
        }

        // The layout of bridge.protocol.encode_frame_header: "type" first, floats as %.9g, the source and
        // image objects in pydantic's field order, meta as json.dumps (shortest floats, ASCII escapes).
        protected override void Write(JsonWriter w)
        {
            w.Float32Numbers = true;
            w.BeginObject();
            w.Name("type").Value("frame");
            w.Name("protocol").Value(Protocol.Version);
            w.Name("run_id").Value(RunId);
            w.Name("player_id").Value(PlayerId);
            w.Name("seq").Value(Seq);
            w.Name("frame_id").Value(FrameId);
            w.Name("seed").Value(Seed);
            w.Name("skeleton").Value(H36m.SkeletonName);
            w.Name("camera").BeginObject();
            w.Name("K").Value(K.ToRows());
            w.Name("image_size").BeginArray().Value(ImageWidth).Value(ImageHeight).EndArray();
            w.Name("R").Value(R.ToRows());
            w.Name("t").Value(T.ToArray());
            w.EndObject();
            w.Name("joints_2d").Value(Joints2d);
            w.Name("joints_3d").Value(Joints3d);
            w.Name("joints_3d_world").Value(Joints3dWorld);
            w.Name("visibility").Value(Visibility);
            w.Name("joints_2d_right").Value(Joints2dRight);
            w.Name("baseline_mm").Value(BaselineMm);
            w.Name("source");
            Source.Write(w);
            w.Name("image");
            Image.Write(w);
            if (Mask != null)
            {
                w.Name("mask");
                Mask.Write(w);
            }
            w.Float32Numbers = false;
            w.EscapeNonAscii = true;
            w.Name("meta").BeginObject();
            foreach (KeyValuePair<string, JsonValue> m in Meta) w.Name(m.Key).Value(m.Value);
            w.EndObject();
            w.EscapeNonAscii = false;
            w.EndObject();
        }
    }

    /// <summary>What a player can produce (protocol "capabilities").</summary>
    public sealed class Capabilities
    {
        public string[] Encodings = { "jpeg" };
        public string Visibility = "depth_buffer";
        public bool RightView = true;
        public int MaxWidth = 4096, MaxHeight = 4096;
    }

    /// <summary>The first message of every player connection (seq 0).</summary>
    public sealed class Hello : Envelope
    {
        public string PlayerKind = "unity";
        public List<KeyValuePair<string, string>> Versions = new List<KeyValuePair<string, string>>();
        public Capabilities Capabilities = new Capabilities();
        public long FramesPlanned, Pid;
        public string Host = "";

        public override void Validate()
        {
            ValidateEnvelope();
            if (PlayerKind != "unity" && PlayerKind != "builtin") throw new ProtocolException("player_kind: must be unity or builtin");
            if (Capabilities.Encodings == null || Capabilities.Encodings.Length == 0) throw new ProtocolException("capabilities.encodings: at least one");
            foreach (string e in Capabilities.Encodings) Protocol.CheckEncoding(e);
            if (Capabilities.Visibility != "depth_buffer" && Capabilities.Visibility != "raycast" && Capabilities.Visibility != "none")
                throw new ProtocolException("capabilities.visibility: must be depth_buffer, raycast or none");
            Protocol.CheckSide("capabilities.max_image_size[0]", Capabilities.MaxWidth);
            Protocol.CheckSide("capabilities.max_image_size[1]", Capabilities.MaxHeight);
            foreach (KeyValuePair<string, string> v in Versions)
                if (v.Value == null || v.Value.Length > 128) throw new ProtocolException("versions." + v.Key + ": at most 128 characters");
            Protocol.CheckNonNegative("frames_planned", FramesPlanned);
            Protocol.CheckNonNegative("pid", Pid);
            if (Host == null || Host.Length > 256) throw new ProtocolException("host: at most 256 characters");
        }

        protected override void Write(JsonWriter w)
        {
            w.BeginObject();
            WriteEnvelope(w, "hello");
            w.Name("player_kind").Value(PlayerKind);
            w.Name("versions").BeginObject();
            foreach (KeyValuePair<string, string> v in Versions) w.Name(v.Key).Value(v.Value);
            w.EndObject();
            w.Name("capabilities").BeginObject();
            w.Name("encodings").BeginArray();
            foreach (string e in Capabilities.Encodings) w.Value(e);
            w.EndArray();
            w.Name("visibility").Value(Capabilities.Visibility);
            w.Name("right_view").Value(Capabilities.RightView);
            w.Name("max_image_size").BeginArray().Value(Capabilities.MaxWidth).Value(Capabilities.MaxHeight).EndArray();
            w.EndObject();
            w.Name("frames_planned").Value(FramesPlanned);
            w.Name("pid").Value(Pid);
            w.Name("host").Value(Host);
            w.EndObject();
        }
    }

    /// <summary>Sent about once a second while the player works.</summary>
    public sealed class Heartbeat : Envelope
    {
        public long FramesSent, FramesPlanned;
        public double Fps;

        public override void Validate()
        {
            ValidateEnvelope();
            Protocol.CheckNonNegative("frames_sent", FramesSent);
            Protocol.CheckNonNegative("frames_planned", FramesPlanned);
            if (!(Fps >= 0) || !Num.IsFinite(Fps)) throw new ProtocolException("fps: must be finite and >= 0, got " + Fps);
        }

        protected override void Write(JsonWriter w)
        {
            w.BeginObject();
            WriteEnvelope(w, "heartbeat");
            w.Name("frames_sent").Value(FramesSent);
            w.Name("frames_planned").Value(FramesPlanned);
            // Millihertz resolution keeps the text identical to pydantic's float output (it differs from
            // repr only below 1e-4).
            w.Name("fps").Value(Math.Round(Fps, 3));
            w.EndObject();
        }
    }

    /// <summary>The player's last message.</summary>
    public sealed class EndOfStream : Envelope
    {
        public long FramesSent;

        public override void Validate()
        {
            ValidateEnvelope();
            Protocol.CheckNonNegative("frames_sent", FramesSent);
        }

        protected override void Write(JsonWriter w)
        {
            w.BeginObject();
            WriteEnvelope(w, "end");
            w.Name("frames_sent").Value(FramesSent);
            w.EndObject();
        }
    }

    /// <summary>A player-side failure, sent before the player exits (fatal) or skips a frame.</summary>
    public sealed class ErrorMessage : Envelope
    {
        public string Code = "internal";
        public string Message = "";
        public bool Fatal;
        public long? FrameId;

        public override void Validate()
        {
            ValidateEnvelope();
            Protocol.CheckCode(Code);
            if (Message == null || Message.Length > 4096) throw new ProtocolException("message: at most 4096 characters");
            if (FrameId.HasValue) Protocol.CheckNonNegative("frame_id", FrameId.Value);
        }

        protected override void Write(JsonWriter w)
        {
            w.BeginObject();
            WriteEnvelope(w, "error");
            w.Name("code").Value(Code);
            w.Name("message").Value(Message);
            w.Name("fatal").Value(Fatal);
            w.Name("frame_id");
            if (FrameId.HasValue) w.Value(FrameId.Value);
            else w.Null();
            w.EndObject();
        }
    }
}
