// A small JSON reader and writer. Neither mono's minimal profile nor Unity ships System.Text.Json,
// and JsonUtility cannot read dictionaries, nullable fields or nested arrays, so the core carries
// its own: the reader reports errors by line and column, the writer emits compact JSON whose floats
// are the shortest round-trip form Python's json module writes (repr), so that headers are
// byte-identical to Python's json.dumps(obj, separators=(",", ":"), ensure_ascii=False).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace PoseBridge.Core
{
    public enum JsonKind
    {
        Null,
        Bool,
        Number,
        String,
        Array,
        Object,
    }

    /// <summary>A parse error or a value of the wrong shape; the message names where.</summary>
    public class JsonException : Exception
    {
        public JsonException(string message) : base(message) { }
    }

    /// <summary>A parsed JSON value. Objects keep their key order.</summary>
    public sealed class JsonValue
    {
        public JsonKind Kind { get; private set; }
        public bool BoolValue { get; private set; }
        public double NumberValue { get; private set; }
        /// <summary>True for a number written without fraction or exponent that fits a long.</summary>
        public bool IsInteger { get; private set; }
        public long IntegerValue { get; private set; }
        public string StringValue { get; private set; }
        public List<JsonValue> Items { get; private set; }
        public List<KeyValuePair<string, JsonValue>> Members { get; private set; }
        Dictionary<string, JsonValue> index;

        JsonValue() { }

        public static readonly JsonValue Null = new JsonValue { Kind = JsonKind.Null };

        public static JsonValue FromBool(bool b) { return new JsonValue { Kind = JsonKind.Bool, BoolValue = b }; }

        public static JsonValue FromNumber(double d) { return new JsonValue { Kind = JsonKind.Number, NumberValue = d }; }

        public static JsonValue FromInteger(long v)
        {
            return new JsonValue { Kind = JsonKind.Number, NumberValue = v, IsInteger = true, IntegerValue = v };
        }

        public static JsonValue FromString(string s) { return new JsonValue { Kind = JsonKind.String, StringValue = s }; }

        public static JsonValue NewArray() { return new JsonValue { Kind = JsonKind.Array, Items = new List<JsonValue>() }; }

        public static JsonValue NewObject()
        {
            return new JsonValue
            {
                Kind = JsonKind.Object,
                Members = new List<KeyValuePair<string, JsonValue>>(),
                index = new Dictionary<string, JsonValue>(StringComparer.Ordinal),
            };
        }

        /// <summary>Adds a member; false when the key already exists.</summary>
        public bool Add(string key, JsonValue value)
        {
            if (index.ContainsKey(key)) return false;
            index[key] = value;
            Members.Add(new KeyValuePair<string, JsonValue>(key, value));
            return true;
        }

        public bool Has(string key) { return Kind == JsonKind.Object && index.ContainsKey(key); }

        /// <summary>The member, or null when absent (or when this is not an object).</summary>
        public JsonValue Get(string key)
        {
            JsonValue v;
            return Kind == JsonKind.Object && index.TryGetValue(key, out v) ? v : null;
        }

        public int Count { get { return Kind == JsonKind.Array ? Items.Count : Kind == JsonKind.Object ? Members.Count : 0; } }

        public static JsonValue Parse(string text) { return new JsonReader(text).ReadDocument(); }

        public string ToJson()
        {
            var w = new JsonWriter();
            w.Value(this);
            return w.ToString();
        }
    }

    /// <summary>Recursive-descent parser for RFC 8259 JSON with line/column error messages.</summary>
    public sealed class JsonReader
    {
        const int MaxDepth = 128;
        readonly string s;
        int pos;

        public JsonReader(string text)
        {
            if (text == null) throw new ArgumentNullException("text");
            s = text;
        }

        public JsonValue ReadDocument()
        {
            SkipWhitespace();
            JsonValue v = ReadValue(0);
            SkipWhitespace();
            if (pos < s.Length) throw Error("unexpected text after the JSON value");
            return v;
        }

        JsonException Error(string what)
        {
            int line = 1, col = 1;
            for (int i = 0; i < pos && i < s.Length; i++)
            {
                if (s[i] == '\n') { line++; col = 1; }
                else col++;
            }
            return new JsonException("line " + line + ", column " + col + ": " + what);
        }

        void SkipWhitespace()
        {
            while (pos < s.Length && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r')) pos++;
        }

        JsonValue ReadValue(int depth)
        {
            if (depth > MaxDepth) throw Error("nesting deeper than " + MaxDepth);
            if (pos >= s.Length) throw Error("unexpected end of input, expected a value");
            char c = s[pos];
            if (c == '{') return ReadObject(depth);
            if (c == '[') return ReadArray(depth);
            if (c == '"') return JsonValue.FromString(ReadString());
            if (c == '-' || (c >= '0' && c <= '9')) return ReadNumber();
            if (Match("true")) return JsonValue.FromBool(true);
            if (Match("false")) return JsonValue.FromBool(false);
            if (Match("null")) return JsonValue.Null;
            throw Error("unexpected character '" + c + "', expected a value");
        }

        bool Match(string word)
        {
            if (string.CompareOrdinal(s, pos, word, 0, word.Length) != 0) return false;
            pos += word.Length;
            return true;
        }

        JsonValue ReadObject(int depth)
        {
            var obj = JsonValue.NewObject();
            pos++;
            SkipWhitespace();
            if (pos < s.Length && s[pos] == '}') { pos++; return obj; }
            while (true)
            {
                SkipWhitespace();
                if (pos >= s.Length || s[pos] != '"') throw Error("expected a string key");
                int keyPos = pos;
                string key = ReadString();
                SkipWhitespace();
                if (pos >= s.Length || s[pos] != ':') throw Error("expected ':' after key \"" + key + "\"");
                pos++;
                SkipWhitespace();
                JsonValue v = ReadValue(depth + 1);
                if (!obj.Add(key, v))
                {
                    pos = keyPos;
                    throw Error("duplicate key \"" + key + "\"");
                }
                SkipWhitespace();
                if (pos >= s.Length) throw Error("unexpected end of input in an object");
                if (s[pos] == ',') { pos++; continue; }
                if (s[pos] == '}') { pos++; return obj; }
                throw Error("expected ',' or '}'");
            }
        }

        JsonValue ReadArray(int depth)
        {
            var arr = JsonValue.NewArray();
            pos++;
            SkipWhitespace();
            if (pos < s.Length && s[pos] == ']') { pos++; return arr; }
            while (true)
            {
                SkipWhitespace();
                arr.Items.Add(ReadValue(depth + 1));
                SkipWhitespace();
                if (pos >= s.Length) throw Error("unexpected end of input in an array");
                if (s[pos] == ',') { pos++; continue; }
                if (s[pos] == ']') { pos++; return arr; }
                throw Error("expected ',' or ']'");
            }
        }

        string ReadString()
        {
            pos++;
            var sb = new StringBuilder();
            while (true)
            {
                if (pos >= s.Length) throw Error("unterminated string");
                char c = s[pos++];
                if (c == '"') return sb.ToString();
                if (c < 0x20) { pos--; throw Error("control character in a string"); }
                if (c != '\\') { sb.Append(c); continue; }
                if (pos >= s.Length) throw Error("unterminated escape");
                char e = s[pos++];
                if (e == '"' || e == '\\' || e == '/') sb.Append(e);
                else if (e == 'b') sb.Append('\b');
                else if (e == 'f') sb.Append('\f');
                else if (e == 'n') sb.Append('\n');
                else if (e == 'r') sb.Append('\r');
                else if (e == 't') sb.Append('\t');
                else if (e == 'u')
                {
                    if (pos + 4 > s.Length) throw Error("truncated \\u escape");
                    int code;
                    if (!int.TryParse(s.Substring(pos, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out code))
                        throw Error("bad \\u escape");
                    sb.Append((char)code);
                    pos += 4;
                }
                else { pos--; throw Error("bad escape '\\" + e + "'"); }
            }
        }

        JsonValue ReadNumber()
        {
            int start = pos;
            bool integral = true;
            if (s[pos] == '-') pos++;
            if (pos >= s.Length || !char.IsDigit(s[pos])) throw Error("bad number");
            if (s[pos] == '0') pos++;
            else while (pos < s.Length && s[pos] >= '0' && s[pos] <= '9') pos++;
            if (pos < s.Length && s[pos] == '.')
            {
                integral = false;
                pos++;
                if (pos >= s.Length || !(s[pos] >= '0' && s[pos] <= '9')) throw Error("bad number: digits expected after '.'");
                while (pos < s.Length && s[pos] >= '0' && s[pos] <= '9') pos++;
            }
            if (pos < s.Length && (s[pos] == 'e' || s[pos] == 'E'))
            {
                integral = false;
                pos++;
                if (pos < s.Length && (s[pos] == '+' || s[pos] == '-')) pos++;
                if (pos >= s.Length || !(s[pos] >= '0' && s[pos] <= '9')) throw Error("bad number: digits expected in the exponent");
                while (pos < s.Length && s[pos] >= '0' && s[pos] <= '9') pos++;
            }
            string text = s.Substring(start, pos - start);
            long l;
            if (integral && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l))
                return JsonValue.FromInteger(l);
            double d;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out d) || double.IsInfinity(d))
            {
                pos = start;
                throw Error("number out of range: " + text);
            }
            return JsonValue.FromNumber(d);
        }
    }

    /// <summary>Compact JSON writer (no spaces), Python-compatible float text.</summary>
    public sealed class JsonWriter
    {
        readonly StringBuilder sb = new StringBuilder(1024);
        // One entry per open container: whether it already holds an element.
        readonly Stack<bool> hasItems = new Stack<bool>();
        bool afterName;

        /// <summary>Escape characters above U+007F as \uXXXX (Python's json.dumps default, ensure_ascii).</summary>
        public bool EscapeNonAscii;

        /// <summary>
        /// Write floats rounded to float32 and printed as C's "%.9g" (9 significant digits read float32
        /// back exactly), instead of the shortest double repr: bridge/protocol.py's frame number format.
        /// </summary>
        public bool Float32Numbers;

        public override string ToString() { return sb.ToString(); }

        public byte[] ToUtf8() { return new UTF8Encoding(false).GetBytes(sb.ToString()); }

        void BeforeValue()
        {
            if (afterName) { afterName = false; return; }
            if (hasItems.Count > 0)
            {
                if (hasItems.Peek()) sb.Append(',');
                hasItems.Pop();
                hasItems.Push(true);
            }
        }

        public JsonWriter BeginObject() { BeforeValue(); sb.Append('{'); hasItems.Push(false); return this; }

        public JsonWriter EndObject() { hasItems.Pop(); sb.Append('}'); return this; }

        public JsonWriter BeginArray() { BeforeValue(); sb.Append('['); hasItems.Push(false); return this; }

        public JsonWriter EndArray() { hasItems.Pop(); sb.Append(']'); return this; }

        public JsonWriter Name(string key)
        {
            BeforeValue();
            WriteString(key);
            sb.Append(':');
            afterName = true;
            return this;
        }

        public JsonWriter Null() { BeforeValue(); sb.Append("null"); return this; }

        public JsonWriter Value(bool b) { BeforeValue(); sb.Append(b ? "true" : "false"); return this; }

        public JsonWriter Value(long v) { BeforeValue(); sb.Append(v.ToString(CultureInfo.InvariantCulture)); return this; }

        public JsonWriter Value(int v) { return Value((long)v); }

        public JsonWriter Value(double v)
        {
            BeforeValue();
            sb.Append(Float32Numbers ? FormatG9((float)v) : FormatDouble(v));
            return this;
        }

        /// <summary>Appends already-encoded JSON as the next value (the caller guarantees it is valid).</summary>
        public JsonWriter Raw(string json)
        {
            BeforeValue();
            sb.Append(json);
            return this;
        }

        public JsonWriter Value(string v)
        {
            BeforeValue();
            if (v == null) sb.Append("null");
            else WriteString(v);
            return this;
        }

        public JsonWriter Value(double[] v)
        {
            BeginArray();
            foreach (double d in v) Value(d);
            return EndArray();
        }

        public JsonWriter Value(double[][] rows)
        {
            BeginArray();
            foreach (double[] r in rows) Value(r);
            return EndArray();
        }

        public JsonWriter Value(int[] v)
        {
            BeginArray();
            foreach (int d in v) Value(d);
            return EndArray();
        }

        /// <summary>Writes a parsed value back (integers stay integers).</summary>
        public JsonWriter Value(JsonValue v)
        {
            if (v == null || v.Kind == JsonKind.Null) return Null();
            if (v.Kind == JsonKind.Bool) return Value(v.BoolValue);
            if (v.Kind == JsonKind.String) return Value(v.StringValue);
            if (v.Kind == JsonKind.Number) return v.IsInteger ? Value(v.IntegerValue) : Value(v.NumberValue);
            if (v.Kind == JsonKind.Array)
            {
                BeginArray();
                foreach (JsonValue item in v.Items) Value(item);
                return EndArray();
            }
            BeginObject();
            foreach (KeyValuePair<string, JsonValue> m in v.Members) Name(m.Key).Value(m.Value);
            return EndObject();
        }

        void WriteString(string v)
        {
            sb.Append('"');
            foreach (char c in v)
            {
                if (c == '"') sb.Append("\\\"");
                else if (c == '\\') sb.Append("\\\\");
                else if (c == '\n') sb.Append("\\n");
                else if (c == '\r') sb.Append("\\r");
                else if (c == '\t') sb.Append("\\t");
                else if (c == '\b') sb.Append("\\b");
                else if (c == '\f') sb.Append("\\f");
                else if (c < 0x20 || (EscapeNonAscii && c > 0x7F)) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                else sb.Append(c);
            }
            sb.Append('"');
        }

        /// <summary>
        /// Python's repr of a float: the shortest decimal that reads back to the same double, in fixed
        /// notation for decimal exponents -4..15 (with ".0" when integral), otherwise d.ddde+XX.
        /// </summary>
        public static string FormatDouble(double v)
        {
            if (!Num.IsFinite(v)) throw new ArgumentException("JSON cannot carry a non-finite number: " + v);
            if (v == 0) return 1 / v < 0 ? "-0.0" : "0.0";
            string digits;
            int exp10;
            ShortestDigits(Math.Abs(v), out digits, out exp10);
            var o = new StringBuilder(24);
            if (v < 0) o.Append('-');
            if (exp10 < -4 || exp10 >= 16)
            {
                o.Append(digits[0]);
                if (digits.Length > 1) o.Append('.').Append(digits, 1, digits.Length - 1);
                o.Append(exp10 < 0 ? "e-" : "e+").Append(Math.Abs(exp10).ToString("00", CultureInfo.InvariantCulture));
            }
            else if (exp10 < 0)
            {
                o.Append("0.").Append('0', -exp10 - 1).Append(digits);
            }
            else if (digits.Length <= exp10 + 1)
            {
                o.Append(digits).Append('0', exp10 + 1 - digits.Length).Append(".0");
            }
            else
            {
                o.Append(digits, 0, exp10 + 1).Append('.').Append(digits, exp10 + 1, digits.Length - exp10 - 1);
            }
            return o.ToString();
        }

        /// <summary>
        /// C's printf("%.9g"): 9 correctly rounded significant digits (ties to even), trailing zeros
        /// dropped, exponent form when the decimal exponent is below -4 or above 8. Every float32 value
        /// reads back exactly; this is the number format of bridge/protocol.py's fast frame encoder.
        /// Negative zero is written "0": JSON readers (pydantic among them) read "-0" as the integer 0.
        /// </summary>
        public static string FormatG9(double v)
        {
            const int P = 9;
            if (!Num.IsFinite(v)) throw new ArgumentException("JSON cannot carry a non-finite number: " + v);
            if (v == 0) return "0";
            string digits;
            int x;
            RoundToSignificant(Math.Abs(v), P, out digits, out x);
            string sig = digits.TrimEnd('0');
            var o = new StringBuilder(20);
            if (v < 0) o.Append('-');
            if (x < -4 || x >= P)
            {
                o.Append(sig[0]);
                if (sig.Length > 1) o.Append('.').Append(sig, 1, sig.Length - 1);
                o.Append(x < 0 ? "e-" : "e+").Append(Math.Abs(x).ToString("00", CultureInfo.InvariantCulture));
            }
            else if (x < 0)
            {
                o.Append("0.").Append('0', -x - 1).Append(sig);
            }
            else if (sig.Length <= x + 1)
            {
                o.Append(sig).Append('0', x + 1 - sig.Length);
            }
            else
            {
                o.Append(sig, 0, x + 1).Append('.').Append(sig, x + 1, sig.Length - x - 1);
            }
            return o.ToString();
        }

        // v > 0 rounded to n significant digits exactly (ties to even): the n digits and the decimal
        // exponent of the first. Exact rational arithmetic, because the runtime's "E" format is not
        // correctly rounded on Mono.
        static void RoundToSignificant(double v, int n, out string digits, out int exp10)
        {
            long bits = BitConverter.DoubleToInt64Bits(v);
            int biased = (int)((bits >> 52) & 0x7FF);
            long fraction = bits & 0xFFFFFFFFFFFFFL;
            long f = biased == 0 ? fraction : fraction | (1L << 52);
            int e = biased == 0 ? -1074 : biased - 1075;
            BigInteger num = e >= 0 ? new BigInteger(f) << e : new BigInteger(f);
            BigInteger den = e >= 0 ? BigInteger.One : BigInteger.One << -e;
            BigInteger lo = BigInteger.Pow(10, n - 1), hi = lo * 10;
            int x = (int)Math.Floor(Math.Log10(v));
            while (true)
            {
                int k = n - 1 - x;
                BigInteger a = k >= 0 ? num * BigInteger.Pow(10, k) : num;
                BigInteger b = k >= 0 ? den : den * BigInteger.Pow(10, -k);
                BigInteger r;
                BigInteger q = BigInteger.DivRem(a, b, out r);
                if (q < lo) { x--; continue; }
                if (q >= hi) { x++; continue; }
                int c = BigInteger.Compare(r * 2, b);
                if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
                if (q == hi) { q = lo; x++; }
                digits = q.ToString(CultureInfo.InvariantCulture);
                exp10 = x;
                return;
            }
        }

        // The shortest significant digits that read back to the same double and, among those, the closest
        // to it (Steele & White / Burger & Dybvig free-format printing with exact integer arithmetic); the
        // digits Python's repr prints. The runtime's own "R"/"E16" formats are not correctly rounded on
        // Mono, so they cannot be used. exp10 is the decimal exponent of the first digit.
        static void ShortestDigits(double v, out string digits, out int exp10)
        {
            long bits = BitConverter.DoubleToInt64Bits(v);
            int biased = (int)((bits >> 52) & 0x7FF);
            long fraction = bits & 0xFFFFFFFFFFFFFL;
            long f = biased == 0 ? fraction : fraction | (1L << 52);
            int e = biased == 0 ? -1074 : biased - 1075;
            bool even = (f & 1) == 0;
            bool lowerGapHalved = biased > 1 && fraction == 0; // a power of two: the gap below is half the gap above
            BigInteger r, s, mPlus, mMinus;
            if (e >= 0)
            {
                BigInteger be = BigInteger.One << e;
                if (!lowerGapHalved) { r = new BigInteger(f) * be * 2; s = 2; mPlus = be; mMinus = be; }
                else { r = new BigInteger(f) * be * 4; s = 4; mPlus = be * 2; mMinus = be; }
            }
            else
            {
                if (!lowerGapHalved) { r = new BigInteger(f) * 2; s = BigInteger.One << (1 - e); mPlus = 1; mMinus = 1; }
                else { r = new BigInteger(f) * 4; s = BigInteger.One << (2 - e); mPlus = 2; mMinus = 1; }
            }
            int k = (int)Math.Ceiling(Math.Log10(v) - 1e-10);
            if (k >= 0) s *= BigInteger.Pow(10, k);
            else
            {
                BigInteger scale = BigInteger.Pow(10, -k);
                r *= scale;
                mPlus *= scale;
                mMinus *= scale;
            }
            // Fix the estimate so that v / 10^k lies in [0.1, 1).
            while (even ? r + mPlus >= s : r + mPlus > s) { s *= 10; k++; }
            while (true)
            {
                BigInteger r10 = r * 10, mp10 = mPlus * 10;
                if (even ? r10 + mp10 >= s : r10 + mp10 > s) break;
                r = r10;
                mPlus = mp10;
                mMinus *= 10;
                k--;
            }
            var sb = new StringBuilder(17);
            while (true)
            {
                r *= 10;
                mPlus *= 10;
                mMinus *= 10;
                BigInteger rem;
                int d = (int)BigInteger.DivRem(r, s, out rem);
                r = rem;
                bool low = even ? r <= mMinus : r < mMinus;
                bool high = even ? r + mPlus >= s : r + mPlus > s;
                if (!low && !high) { sb.Append((char)('0' + d)); continue; }
                if (low && high)
                {
                    // Both neighbours read back: take the closer, and the even digit on an exact tie (as Python).
                    int c = BigInteger.Compare(r * 2, s);
                    if (c > 0 || (c == 0 && (d & 1) == 1)) d++;
                }
                else if (high) d++;
                sb.Append((char)('0' + d));
                break;
            }
            digits = sb.ToString().TrimEnd('0');
            if (digits.Length == 0) digits = "0";
            exp10 = k - 1;
        }
    }
}
