// The player's command line (batch entry). A launched player gets "--mlagents-port P" from
// mlagents_envs and receives its run config over the side channel; a standalone player (no Python
// control plane) reads it from --posebridge-config FILE. The --posebridge-* options override fields.
using System;
using System.Globalization;

namespace PoseBridge.Core
{
    public sealed class PlayerArgs
    {
        public int? MlAgentsPort;
        public string ConfigPath, Endpoint, RunId, PlayerId;
        public long? Seed, Frames;
        public int? WorkerId;
        public bool BatchMode, NoGraphics;

        /// <summary>True when a Python launcher drives the player through the ML-Agents communicator.</summary>
        public bool Controlled { get { return MlAgentsPort.HasValue; } }

        public static PlayerArgs Parse(string[] args)
        {
            var a = new PlayerArgs();
            for (int i = 0; i < args.Length; i++)
            {
                string arg = args[i];
                string lower = arg.ToLowerInvariant();
                if (lower == "-batchmode") a.BatchMode = true;
                else if (lower == "-nographics") a.NoGraphics = true;
                else if (arg == "--mlagents-port") a.MlAgentsPort = (int)Int(args, ref i, 1, 65535);
                else if (arg == "--posebridge-config") a.ConfigPath = Text(args, ref i);
                else if (arg == "--posebridge-endpoint") a.Endpoint = Text(args, ref i);
                else if (arg == "--posebridge-run-id") a.RunId = Text(args, ref i);
                else if (arg == "--posebridge-player-id") a.PlayerId = Text(args, ref i);
                else if (arg == "--posebridge-seed") a.Seed = Int(args, ref i, 0, long.MaxValue);
                else if (arg == "--posebridge-frames") a.Frames = Int(args, ref i, 1, long.MaxValue);
                else if (arg == "--posebridge-worker-id") a.WorkerId = (int)Int(args, ref i, 0, int.MaxValue);
                else if (arg.StartsWith("--posebridge-")) throw new ConfigException("command line: unknown option " + arg);
                // Anything else belongs to Unity (-logFile, -screen-width, ...).
            }
            return a;
        }

        static string Text(string[] args, ref int i)
        {
            if (i + 1 >= args.Length) throw new ConfigException("command line: " + args[i] + " needs a value");
            return args[++i];
        }

        static long Int(string[] args, ref int i, long lo, long hi)
        {
            string name = args[i];
            string s = Text(args, ref i);
            long v;
            if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out v) || v < lo || v > hi)
                throw new ConfigException("command line: " + name + " needs an integer in [" + lo + ", " + hi + "], got \"" + s + "\"");
            return v;
        }

        /// <summary>Applies the command-line overrides to a parsed config.</summary>
        public void ApplyTo(RunConfig c)
        {
            if (Endpoint != null) c.Endpoint = Endpoint;
            if (RunId != null) c.RunId = RunId;
            if (PlayerId != null) c.PlayerId = PlayerId;
            if (Seed.HasValue) c.Seed = Seed.Value;
            if (WorkerId.HasValue) c.WorkerId = WorkerId.Value;
            if (Frames.HasValue)
            {
                c.Frames.Clear();
                c.Frames.Add(new[] { 0L, Frames.Value });
            }
        }
    }
}
