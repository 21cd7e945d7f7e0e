// Engine-free linear algebra for the player core (doubles; the Runtime converts from UnityEngine types).
// Kept inside the C# 7.0 subset that both mcs and Unity compile.
using System;

namespace PoseBridge.Core
{
    /// <summary>A 3-vector of doubles.</summary>
    public struct Vec3
    {
        public double X, Y, Z;

        public Vec3(double x, double y, double z)
        {
            X = x;
            Y = y;
            Z = z;
        }

        public static Vec3 Zero { get { return new Vec3(0, 0, 0); } }

        public static Vec3 operator +(Vec3 a, Vec3 b) { return new Vec3(a.X + b.X, a.Y + b.Y, a.Z + b.Z); }
        public static Vec3 operator -(Vec3 a, Vec3 b) { return new Vec3(a.X - b.X, a.Y - b.Y, a.Z - b.Z); }
        public static Vec3 operator -(Vec3 a) { return new Vec3(-a.X, -a.Y, -a.Z); }
        public static Vec3 operator *(Vec3 a, double s) { return new Vec3(a.X * s, a.Y * s, a.Z * s); }
        public static Vec3 operator *(double s, Vec3 a) { return new Vec3(a.X * s, a.Y * s, a.Z * s); }
        public static Vec3 operator /(Vec3 a, double s) { return new Vec3(a.X / s, a.Y / s, a.Z / s); }

        public double this[int i]
        {
            get
            {
                if (i == 0) return X;
                if (i == 1) return Y;
                if (i == 2) return Z;
                throw new IndexOutOfRangeException("Vec3 index " + i);
            }
        }

        public static double Dot(Vec3 a, Vec3 b) { return a.X * b.X + a.Y * b.Y + a.Z * b.Z; }

        public static Vec3 Cross(Vec3 a, Vec3 b)
        {
            return new Vec3(a.Y * b.Z - a.Z * b.Y, a.Z * b.X - a.X * b.Z, a.X * b.Y - a.Y * b.X);
        }

        public static Vec3 Lerp(Vec3 a, Vec3 b, double t) { return a + (b - a) * t; }

        public double Norm { get { return Math.Sqrt(X * X + Y * Y + Z * Z); } }

        public Vec3 Normalized
        {
            get
            {
                double n = Norm;
                if (!(n > 0)) throw new ArgumentException("cannot normalize a zero or non-finite vector");
                return this / n;
            }
        }

        public bool IsFinite { get { return Num.IsFinite(X) && Num.IsFinite(Y) && Num.IsFinite(Z); } }

        public double[] ToArray() { return new[] { X, Y, Z }; }

        public override string ToString() { return "(" + X + ", " + Y + ", " + Z + ")"; }
    }

    /// <summary>A row-major 3x3 matrix of doubles.</summary>
    public struct Mat3
    {
        public double M00, M01, M02, M10, M11, M12, M20, M21, M22;

        public Mat3(double m00, double m01, double m02, double m10, double m11, double m12, double m20, double m21, double m22)
        {
            M00 = m00; M01 = m01; M02 = m02;
            M10 = m10; M11 = m11; M12 = m12;
            M20 = m20; M21 = m21; M22 = m22;
        }

        public static Mat3 Identity { get { return new Mat3(1, 0, 0, 0, 1, 0, 0, 0, 1); } }

        public static Mat3 Diagonal(double a, double b, double c) { return new Mat3(a, 0, 0, 0, b, 0, 0, 0, c); }

        public static Mat3 FromRows(Vec3 r0, Vec3 r1, Vec3 r2)
        {
            return new Mat3(r0.X, r0.Y, r0.Z, r1.X, r1.Y, r1.Z, r2.X, r2.Y, r2.Z);
        }

        public static Mat3 FromColumns(Vec3 c0, Vec3 c1, Vec3 c2) { return FromRows(c0, c1, c2).Transposed; }

        public Vec3 Row(int i)
        {
            if (i == 0) return new Vec3(M00, M01, M02);
            if (i == 1) return new Vec3(M10, M11, M12);
            if (i == 2) return new Vec3(M20, M21, M22);
            throw new IndexOutOfRangeException("Mat3 row " + i);
        }

        public Vec3 Column(int j) { return new Vec3(Row(0)[j], Row(1)[j], Row(2)[j]); }

        public double this[int i, int j] { get { return Row(i)[j]; } }

        public Mat3 Transposed { get { return new Mat3(M00, M10, M20, M01, M11, M21, M02, M12, M22); } }

        public double Determinant
        {
            get
            {
                return M00 * (M11 * M22 - M12 * M21) - M01 * (M10 * M22 - M12 * M20) + M02 * (M10 * M21 - M11 * M20);
            }
        }

        public static Vec3 operator *(Mat3 m, Vec3 v)
        {
            return new Vec3(
                m.M00 * v.X + m.M01 * v.Y + m.M02 * v.Z,
                m.M10 * v.X + m.M11 * v.Y + m.M12 * v.Z,
                m.M20 * v.X + m.M21 * v.Y + m.M22 * v.Z);
        }

        public static Mat3 operator *(Mat3 a, Mat3 b)
        {
            Mat3 bt = b.Transposed;
            return FromRows(
                new Vec3(Vec3.Dot(a.Row(0), bt.Row(0)), Vec3.Dot(a.Row(0), bt.Row(1)), Vec3.Dot(a.Row(0), bt.Row(2))),
                new Vec3(Vec3.Dot(a.Row(1), bt.Row(0)), Vec3.Dot(a.Row(1), bt.Row(1)), Vec3.Dot(a.Row(1), bt.Row(2))),
                new Vec3(Vec3.Dot(a.Row(2), bt.Row(0)), Vec3.Dot(a.Row(2), bt.Row(1)), Vec3.Dot(a.Row(2), bt.Row(2))));
        }

        /// <summary>Rows as nested arrays, the layout of the wire protocol's 3x3 matrices.</summary>
        public double[][] ToRows()
        {
            return new[] { Row(0).ToArray(), Row(1).ToArray(), Row(2).ToArray() };
        }
    }

    /// <summary>A rotation quaternion (x, y, z, w) with Unity's component order and composition rules.</summary>
    public struct Quat
    {
        public double X, Y, Z, W;

        public Quat(double x, double y, double z, double w)
        {
            X = x;
            Y = y;
            Z = z;
            W = w;
        }

        public static Quat Identity { get { return new Quat(0, 0, 0, 1); } }

        /// <summary>Rotation of <paramref name="degrees"/> about <paramref name="axis"/>, like Quaternion.AngleAxis.</summary>
        public static Quat AngleAxis(double degrees, Vec3 axis)
        {
            Vec3 a = axis.Normalized;
            double h = 0.5 * degrees * Math.PI / 180.0;
            double s = Math.Sin(h);
            return new Quat(a.X * s, a.Y * s, a.Z * s, Math.Cos(h));
        }

        /// <summary>Like Unity's Quaternion.Euler: rotate z degrees about z, then x about x, then y about y.</summary>
        public static Quat Euler(double xDeg, double yDeg, double zDeg)
        {
            return AngleAxis(yDeg, new Vec3(0, 1, 0)) * AngleAxis(xDeg, new Vec3(1, 0, 0)) * AngleAxis(zDeg, new Vec3(0, 0, 1));
        }

        /// <summary>Hamilton product: (a * b) rotates by b first, then by a (Unity's convention).</summary>
        public static Quat operator *(Quat a, Quat b)
        {
            return new Quat(
                a.W * b.X + a.X * b.W + a.Y * b.Z - a.Z * b.Y,
                a.W * b.Y - a.X * b.Z + a.Y * b.W + a.Z * b.X,
                a.W * b.Z + a.X * b.Y - a.Y * b.X + a.Z * b.W,
                a.W * b.W - a.X * b.X - a.Y * b.Y - a.Z * b.Z);
        }

        public Quat Normalized
        {
            get
            {
                double n = Math.Sqrt(X * X + Y * Y + Z * Z + W * W);
                if (!(n > 0)) throw new ArgumentException("cannot normalize a zero quaternion");
                return new Quat(X / n, Y / n, Z / n, W / n);
            }
        }

        public Quat Inverse { get { return new Quat(-X, -Y, -Z, W); } }

        /// <summary>The rotation matrix; its columns are the rotated x, y and z axes.</summary>
        public Mat3 ToMatrix()
        {
            Quat q = Normalized;
            double xx = q.X * q.X, yy = q.Y * q.Y, zz = q.Z * q.Z;
            double xy = q.X * q.Y, xz = q.X * q.Z, yz = q.Y * q.Z;
            double wx = q.W * q.X, wy = q.W * q.Y, wz = q.W * q.Z;
            return new Mat3(
                1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
                2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
                2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy));
        }

        public Vec3 Rotate(Vec3 v) { return ToMatrix() * v; }

        /// <summary>The quaternion of a proper rotation matrix (Shepperd's method), with w >= 0.</summary>
        public static Quat FromMatrix(Mat3 m)
        {
            double trace = m.M00 + m.M11 + m.M22;
            Quat q;
            if (trace > 0)
            {
                double s = 2.0 * Math.Sqrt(1.0 + trace);
                q = new Quat((m.M21 - m.M12) / s, (m.M02 - m.M20) / s, (m.M10 - m.M01) / s, 0.25 * s);
            }
            else if (m.M00 > m.M11 && m.M00 > m.M22)
            {
                double s = 2.0 * Math.Sqrt(1.0 + m.M00 - m.M11 - m.M22);
                q = new Quat(0.25 * s, (m.M01 + m.M10) / s, (m.M02 + m.M20) / s, (m.M21 - m.M12) / s);
            }
            else if (m.M11 > m.M22)
            {
                double s = 2.0 * Math.Sqrt(1.0 + m.M11 - m.M00 - m.M22);
                q = new Quat((m.M01 + m.M10) / s, 0.25 * s, (m.M12 + m.M21) / s, (m.M02 - m.M20) / s);
            }
            else
            {
                double s = 2.0 * Math.Sqrt(1.0 + m.M22 - m.M00 - m.M11);
                q = new Quat((m.M02 + m.M20) / s, (m.M12 + m.M21) / s, 0.25 * s, (m.M10 - m.M01) / s);
            }
            q = q.Normalized;
            return q.W < 0 ? new Quat(-q.X, -q.Y, -q.Z, -q.W) : q;
        }
    }

    /// <summary>Small numeric helpers that .NET Standard 2.0 / Mono 4.x lack.</summary>
    public static class Num
    {
        public static bool IsFinite(double v) { return !double.IsNaN(v) && !double.IsInfinity(v); }

        public static double Deg2Rad(double deg) { return deg * Math.PI / 180.0; }

        public static double Rad2Deg(double rad) { return rad * 180.0 / Math.PI; }
    }
}
