// Random cameras around the posed person: the distribution of generator/camera_sampler.py (weighted
// profiles of uniform ranges, a look-at camera around the pelvis, the in-frame rejection rule), drawn
// from a FrameRng so that a frame's camera depends on (seed, frame id) only. Same distribution as the
// Python sampler, not the same random stream.
using System;
using System.Collections.Generic;

namespace PoseBridge.Core
{
    /// <summary>One profile of camera ranges (generator.camera_sampler.CameraProfile).</summary>
    public sealed class CameraProfileSettings
    {
        public string Name = "profile";
        public double Weight = 1.0;
        public double[] DistanceMm = { 3500, 6500 };
        public double[] AzimuthDeg = { -180, 180 };
        public double[] ElevationDeg = { 0, 20 };
        public double[] RollDeg = { 0, 0 };
        /// <summary>Field of view across the longer image side (degrees); null when FocalPx is given.</summary>
        public double[] FovDeg = { 43, 51 };
        public double[] FocalPx;
        public double PrincipalPointJitter;
        public List<int[]> ImageSizes = new List<int[]> { new[] { 1000, 1000 } };
        public double LookAtJitterMm;
    }

    /// <summary>The camera distribution (generator.camera_sampler.CameraSamplerConfig).</summary>
    public sealed class CameraSamplerSettings
    {
        public List<CameraProfileSettings> Profiles = new List<CameraProfileSettings>();
        public double MinInFrameFraction = 0.9;
        public int MaxRounds = 30;

        /// <summary>Python's default distribution: the h36m and phone profiles of generator/camera_sampler.py.</summary>
        public static CameraSamplerSettings Default()
        {
            var s = new CameraSamplerSettings();
            s.Profiles.Add(new CameraProfileSettings
            {
                Name = "h36m", DistanceMm = new double[] { 3500, 6500 }, ElevationDeg = new double[] { 0, 20 }, RollDeg = new double[] { -3, 3 },
                FovDeg = new double[] { 43, 51 }, PrincipalPointJitter = 0.01, LookAtJitterMm = 150,
                ImageSizes = new List<int[]> { new[] { 1000, 1000 } },
            });
            s.Profiles.Add(new CameraProfileSettings
            {
                Name = "phone", DistanceMm = new double[] { 1800, 5000 }, ElevationDeg = new double[] { -15, 35 }, RollDeg = new double[] { -8, 8 },
                FovDeg = new double[] { 60, 75 }, PrincipalPointJitter = 0.02, LookAtJitterMm = 250,
                ImageSizes = new List<int[]> { new[] { 1920, 1080 }, new[] { 1080, 1920 }, new[] { 1280, 720 }, new[] { 720, 1280 } },
            });
            return s;
        }
    }

    public struct SampledCamera
    {
        public Intrinsics K;
        public int Width, Height;
        public Mat3 R;
        public Vec3 T;
        public int Profile;
        public double AzimuthRad;
    }

    public static class CameraSampler
    {
        /// <summary>
        /// One camera looking at <paramref name="target"/> (world mm). A positive
        /// <paramref name="width"/>/<paramref name="height"/> overrides the profile's image sizes
        /// (the renderer's --image-size), keeping its field of view.
        /// </summary>
        public static SampledCamera Sample(FrameRng rng, Vec3 target, CameraSamplerSettings settings, int width, int height)
        {
            if (settings.Profiles.Count == 0) throw new ArgumentException("camera settings have no profiles");
            var weights = new double[settings.Profiles.Count];
            for (int i = 0; i < weights.Length; i++) weights[i] = settings.Profiles[i].Weight;
            int which = settings.Profiles.Count > 1 ? rng.Choice(weights) : 0;
            CameraProfileSettings p = settings.Profiles[which];

            double distance = rng.Uniform(p.DistanceMm[0], p.DistanceMm[1]);
            double azimuth = Num.Deg2Rad(rng.Uniform(p.AzimuthDeg[0], p.AzimuthDeg[1]));
            double elevation = Num.Deg2Rad(rng.Uniform(p.ElevationDeg[0], p.ElevationDeg[1]));
            double roll = Num.Deg2Rad(rng.Uniform(p.RollDeg[0], p.RollDeg[1]));
            int[] size = p.ImageSizes[rng.NextInt(p.ImageSizes.Count)];
            int w = width > 0 ? width : size[0], h = height > 0 ? height : size[1];
            double u = rng.NextDouble();
            double focal = p.FovDeg != null
                ? Intrinsics.FocalFromLongSideFov(p.FovDeg[0] + u * (p.FovDeg[1] - p.FovDeg[0]), w, h)
                : p.FocalPx[0] + u * (p.FocalPx[1] - p.FocalPx[0]);
            double cx = w * (0.5 + p.PrincipalPointJitter * rng.Uniform(-1, 1));
            double cy = h * (0.5 + p.PrincipalPointJitter * rng.Uniform(-1, 1));
            Vec3 look = target + new Vec3(rng.Normal(), rng.Normal(), rng.Normal()) * p.LookAtJitterMm;
            double ce = Math.Cos(elevation);
            Vec3 offset = new Vec3(ce * Math.Cos(azimuth), ce * Math.Sin(azimuth), Math.Sin(elevation));
            var cam = new SampledCamera { K = new Intrinsics(focal, focal, cx, cy), Width = w, Height = h, Profile = which, AzimuthRad = azimuth };
            CameraPoses.LookAt(look + offset * distance, look, roll, out cam.R, out cam.T);
            return cam;
        }

        /// <summary>
        /// A camera for a pose (17 world joints, mm), redrawn up to MaxRounds times until at least
        /// MinInFrameFraction of the joints are in the image; <paramref name="accepted"/> is false when
        /// none qualified (the caller then draws another pose).
        /// </summary>
        public static SampledCamera SampleForPose(FrameRng rng, Vec3[] jointsWorld, CameraSamplerSettings settings,
            int width, int height, double baselineMm, out bool accepted)
        {
            SampledCamera cam = default(SampledCamera);
            for (int round = 0; round < Math.Max(1, settings.MaxRounds); round++)
            {
                cam = Sample(rng, jointsWorld[0], settings, width, height);
                FrameGroundTruth g = FrameGroundTruth.Compute(jointsWorld, cam.R, cam.T, cam.K, cam.Width, cam.Height, baselineMm);
                if (g.InFrameFraction >= settings.MinInFrameFraction)
                {
                    accepted = true;
                    return cam;
                }
            }
            accepted = false;
            return cam;
        }
    }
}
