// A reader for glTF 2.0 binary (.glb) files: the container, the JSON, and accessor data. Enough to
// read a posebridge body (generator/body/gltf.py) without an engine: glTFast imports the same file
// into Unity, but reads one joint/weight set only and drops the root extras this package needs.
using System;
using System.Collections.Generic;
using System.Text;

namespace PoseBridge.Core
{
    public sealed class GlbException : Exception
    {
        public GlbException(string message) : base(message) { }
    }

    /// <summary>A parsed .glb: its JSON document and its binary chunk.</summary>
    public sealed class GlbDocument
    {
        const uint Magic = 0x46546C67; // "glTF"
        const uint ChunkJson = 0x4E4F534A;
        const uint ChunkBin = 0x004E4942;

        public readonly string Origin;
        public readonly JsonValue Json;
        readonly byte[] bin;

        GlbDocument(string origin, JsonValue json, byte[] bin)
        {
            Origin = origin;
            Json = json;
            this.bin = bin;
        }

        /// <summary>Parses the container; errors name <paramref name="origin"/> (a file path) and the problem.</summary>
        public static GlbDocument Parse(byte[] bytes, string origin)
        {
            if (!BitConverter.IsLittleEndian) throw new GlbException(origin + ": big-endian machines are not supported");
            if (bytes == null || bytes.Length < 20) throw new GlbException(origin + ": too short for a glTF binary file");
            if (BitConverter.ToUInt32(bytes, 0) != Magic) throw new GlbException(origin + ": not a glTF binary file (no 'glTF' magic)");
            uint version = BitConverter.ToUInt32(bytes, 4);
            if (version != 2) throw new GlbException(origin + ": glTF binary version " + version + ", expected 2");
            long length = BitConverter.ToUInt32(bytes, 8);
            if (length > bytes.Length) throw new GlbException(origin + ": truncated (header says " + length + " bytes, file has " + bytes.Length + ")");
            JsonValue json = null;
            byte[] bin = null;
            long pos = 12;
            while (pos + 8 <= length)
            {
                long chunkLength = BitConverter.ToUInt32(bytes, (int)pos);
                uint type = BitConverter.ToUInt32(bytes, (int)pos + 4);
                long start = pos + 8;
                if (start + chunkLength > length) throw new GlbException(origin + ": chunk at byte " + pos + " runs past the end of the file");
                if (type == ChunkJson && json == null)
                {
                    string text = new UTF8Encoding(false, true).GetString(bytes, (int)start, (int)chunkLength);
                    try
                    {
                        json = JsonValue.Parse(text.TrimEnd(' ', '\0'));
                    }
                    catch (JsonException e)
                    {
                        throw new GlbException(origin + ": the JSON chunk is not valid JSON: " + e.Message);
                    }
                }
                else if (type == ChunkBin && bin == null)
                {
                    bin = new byte[chunkLength];
                    Buffer.BlockCopy(bytes, (int)start, bin, 0, (int)chunkLength);
                }
                pos = start + chunkLength;
            }
            if (json == null || json.Kind != JsonKind.Object) throw new GlbException(origin + ": no JSON chunk");
            return new GlbDocument(origin, json, bin ?? new byte[0]);
        }

        /// <summary>The member at a path of keys and array indices, or an error naming the path.</summary>
        public JsonValue Require(JsonValue v, string path, string key)
        {
            JsonValue m = v == null ? null : v.Get(key);
            if (m == null) throw new GlbException(Origin + ": " + path + (path.Length > 0 ? "." : "") + key + " is missing");
            return m;
        }

        public JsonValue Item(string arrayKey, int index)
        {
            JsonValue arr = Require(Json, "", arrayKey);
            if (arr.Kind != JsonKind.Array || index < 0 || index >= arr.Items.Count)
                throw new GlbException(Origin + ": " + arrayKey + "[" + index + "] does not exist");
            return arr.Items[index];
        }

        static int Width(string type)
        {
            switch (type)
            {
                case "SCALAR": return 1;
                case "VEC2": return 2;
                case "VEC3": return 3;
                case "VEC4": return 4;
                case "MAT4": return 16;
                default: return 0;
            }
        }

        static int ComponentSize(long componentType)
        {
            switch (componentType)
            {
                case 5120: case 5121: return 1;
                case 5122: case 5123: return 2;
                case 5125: case 5126: return 4;
                default: return 0;
            }
        }

        /// <summary>
        /// Accessor <paramref name="index"/> as doubles, <paramref name="width"/> components per element
        /// (normalized integers are scaled to [0, 1] or [-1, 1], as glTF defines).
        /// </summary>
        public double[] ReadAccessor(int index, out int width, out int count)
        {
            string where = "accessors[" + index + "]";
            JsonValue acc = Item("accessors", index);
            long componentType = Require(acc, where, "componentType").IntegerValue;
            width = Width(Require(acc, where, "type").StringValue);
            count = (int)Require(acc, where, "count").IntegerValue;
            int size = ComponentSize(componentType);
            if (width == 0 || size == 0) throw new GlbException(Origin + ": " + where + " has an unsupported type or component type");
            if (!acc.Has("bufferView")) throw new GlbException(Origin + ": " + where + " has no bufferView (sparse-only accessors are not supported)");
            int viewIndex = (int)acc.Get("bufferView").IntegerValue;
            JsonValue view = Item("bufferViews", viewIndex);
            if (view.Has("buffer") && view.Get("buffer").IntegerValue != 0)
                throw new GlbException(Origin + ": bufferViews[" + viewIndex + "] refers to an external buffer");
            long start = (view.Has("byteOffset") ? view.Get("byteOffset").IntegerValue : 0) + (acc.Has("byteOffset") ? acc.Get("byteOffset").IntegerValue : 0);
            long stride = view.Has("byteStride") ? view.Get("byteStride").IntegerValue : size * width;
            long end = count == 0 ? start : start + stride * (count - 1) + size * width;
            if (end > bin.Length) throw new GlbException(Origin + ": " + where + " reads past the binary chunk");
            bool normalized = acc.Has("normalized") && acc.Get("normalized").BoolValue;
            var out_ = new double[count * width];
            for (int i = 0; i < count; i++)
            {
                long row = start + stride * i;
                for (int k = 0; k < width; k++)
                {
                    int at = (int)(row + size * k);
                    double v;
                    switch (componentType)
                    {
                        case 5120: v = (sbyte)bin[at]; if (normalized) v = Math.Max(v / 127.0, -1.0); break;
                        case 5121: v = bin[at]; if (normalized) v /= 255.0; break;
                        case 5122: v = BitConverter.ToInt16(bin, at); if (normalized) v = Math.Max(v / 32767.0, -1.0); break;
                        case 5123: v = BitConverter.ToUInt16(bin, at); if (normalized) v /= 65535.0; break;
                        case 5125: v = BitConverter.ToUInt32(bin, at); break;
                        default: v = BitConverter.ToSingle(bin, at); break;
                    }
                    out_[i * width + k] = v;
                }
            }
            return out_;
        }

        /// <summary>An accessor that must have <paramref name="expectedWidth"/> components.</summary>
        public double[] ReadAccessor(int index, int expectedWidth, out int count)
        {
            int width;
            double[] data = ReadAccessor(index, out width, out count);
            if (width != expectedWidth)
                throw new GlbException(Origin + ": accessors[" + index + "] has " + width + " components per element, expected " + expectedWidth);
            return data;
        }
    }

    /// <summary>A 3D affine map x -> L x + T (rotation, scale) in doubles.</summary>
    public struct Affine
    {
        public Mat3 L;
        public Vec3 T;

        public Affine(Mat3 l, Vec3 t)
        {
            L = l;
            T = t;
        }

        public static Affine Identity { get { return new Affine(Mat3.Identity, Vec3.Zero); } }

        public Vec3 Apply(Vec3 x) { return L * x + T; }

        public static Affine operator *(Affine a, Affine b) { return new Affine(a.L * b.L, a.L * b.T + a.T); }

        /// <summary>glTF's node transform T * R * S.</summary>
        public static Affine FromTrs(Vec3 translation, Quat rotation, Vec3 scale)
        {
            Mat3 r = rotation.ToMatrix();
            return new Affine(r * Mat3.Diagonal(scale.X, scale.Y, scale.Z), translation);
        }

        /// <summary>A 4x4 matrix stored column-major (glTF's layout); its last row must be (0, 0, 0, 1).</summary>
        public static Affine FromColumnMajor(double[] m, int offset)
        {
            if (Math.Abs(m[offset + 3]) > 1e-6 || Math.Abs(m[offset + 7]) > 1e-6 || Math.Abs(m[offset + 11]) > 1e-6 || Math.Abs(m[offset + 15] - 1) > 1e-6)
                throw new ArgumentException("not an affine matrix (its last row is not 0 0 0 1)");
            return new Affine(
                new Mat3(m[offset], m[offset + 4], m[offset + 8], m[offset + 1], m[offset + 5], m[offset + 9], m[offset + 2], m[offset + 6], m[offset + 10]),
                new Vec3(m[offset + 12], m[offset + 13], m[offset + 14]));
        }

        public Affine Inverse
        {
            get
            {
                Mat3 inv = Inverse3(L);
                return new Affine(inv, -(inv * T));
            }
        }

        /// <summary>The inverse of a 3x3 matrix by cofactors.</summary>
        public static Mat3 Inverse3(Mat3 m)
        {
            double det = m.Determinant;
            if (!(Math.Abs(det) > 1e-300)) throw new ArgumentException("singular matrix");
            double k = 1.0 / det;
            return new Mat3(
                (m.M11 * m.M22 - m.M12 * m.M21) * k, (m.M02 * m.M21 - m.M01 * m.M22) * k, (m.M01 * m.M12 - m.M02 * m.M11) * k,
                (m.M12 * m.M20 - m.M10 * m.M22) * k, (m.M00 * m.M22 - m.M02 * m.M20) * k, (m.M02 * m.M10 - m.M00 * m.M12) * k,
                (m.M10 * m.M21 - m.M11 * m.M20) * k, (m.M01 * m.M20 - m.M00 * m.M21) * k, (m.M00 * m.M11 - m.M01 * m.M10) * k);
        }

        /// <summary>S A S for a reflection S (its own inverse): the same map seen through a mirror.</summary>
        public Affine Conjugated(Mat3 s) { return new Affine(s * L * s, s * T); }
    }
}
