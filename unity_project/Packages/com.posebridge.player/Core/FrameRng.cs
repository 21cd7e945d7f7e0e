// Per-frame random streams: every random draw for frame f of a run with seed s comes from a stream
// keyed by (s, f, purpose), so a frame is a function of (config, seed, frame id) alone and a
// restarted player reproduces exactly the frames it had not yet sent (resume), in any order.
using System;

namespace PoseBridge.Core
{
    /// <summary>SplitMix64 (Steele, Lea and Flood 2014) keyed by seed, frame id and stream.</summary>
    public sealed class FrameRng
    {
        // Stream ids, one per independent purpose, so adding draws to one purpose never shifts another.
        public const int CameraStream = 1;
        public const int PoseStream = 2;
        public const int SceneStream = 3;
        public const int OccluderStream = 4;

        ulong state;
        double spareNormal;
        bool hasSpare;

        const ulong Gamma = 0x9E3779B97F4A7C15UL;

        public FrameRng(long seed, long frameId, int stream)
        {
            state = Mix(Mix(Mix((ulong)seed) ^ (ulong)frameId) ^ (ulong)stream);
        }

        /// <summary>One SplitMix64 step on <paramref name="z"/> as a state: advance, then finalize.</summary>
        static ulong Mix(ulong z) { return Finalize(z + Gamma); }

        static ulong Finalize(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public ulong NextULong()
        {
            state += Gamma;
            return Finalize(state);
        }

        /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
        public double NextDouble() { return (NextULong() >> 11) * (1.0 / 9007199254740992.0); }

        /// <summary>Uniform in [lo, hi) (lo when the range is empty).</summary>
        public double Uniform(double lo, double hi) { return lo + (hi - lo) * NextDouble(); }

        /// <summary>Uniform integer in [0, n).</summary>
        public int NextInt(int n)
        {
            if (n <= 0) throw new ArgumentException("n must be positive");
            return (int)(NextDouble() * n);
        }

        /// <summary>Standard normal (Box-Muller, both values used).</summary>
        public double Normal()
        {
            if (hasSpare)
            {
                hasSpare = false;
                return spareNormal;
            }
            double u1 = 1.0 - NextDouble(), u2 = NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            spareNormal = r * Math.Sin(2 * Math.PI * u2);
            hasSpare = true;
            return r * Math.Cos(2 * Math.PI * u2);
        }

        /// <summary>An index drawn with probability proportional to its (positive) weight.</summary>
        public int Choice(double[] weights)
        {
            double total = 0;
            foreach (double w in weights) total += w;
            double x = NextDouble() * total;
            for (int i = 0; i < weights.Length; i++)
            {
                x -= weights[i];
                if (x < 0) return i;
            }
            return weights.Length - 1;
        }
    }
}
