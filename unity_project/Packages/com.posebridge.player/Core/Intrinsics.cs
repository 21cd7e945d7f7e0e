// Pinhole intrinsics in our pixel convention (origin at the top-left corner of the top-left pixel,
// y down) from Unity's camera description: a vertical field of view, or a physical camera
// (focal length, sensor size, lens shift, gate fit). docs/conventions.md, "Unity frames".
using System;

namespace PoseBridge.Core
{
    /// <summary>Unity's Camera.GateFitMode, with the same integer values.</summary>
    public enum GateFit
    {
        None = 0,
        Vertical = 1,
        Horizontal = 2,
        Fill = 3,
        Overscan = 4,
    }

    /// <summary>K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels.</summary>
    public struct Intrinsics
    {
        public double Fx, Fy, Cx, Cy;

        public Intrinsics(double fx, double fy, double cx, double cy)
        {
            Fx = fx;
            Fy = fy;
            Cx = cx;
            Cy = cy;
        }

        /// <summary>A non-physical Unity camera: Camera.fieldOfView is vertical, the axis hits the image centre.</summary>
        public static Intrinsics FromVerticalFov(double fovYDeg, int width, int height)
        {
            CheckSize(width, height);
            if (!(fovYDeg > 0 && fovYDeg < 180)) throw new ArgumentException("vertical field of view must lie in (0, 180) degrees, got " + fovYDeg);
            double f = 0.5 * height / Math.Tan(0.5 * Num.Deg2Rad(fovYDeg));
            return new Intrinsics(f, f, 0.5 * width, 0.5 * height);
        }

        /// <summary>The gate fit Unity applies: Fill and Overscan resolve to Vertical or Horizontal.</summary>
        public static GateFit ResolveGateFit(GateFit fit, double imageAspect, double sensorAspect)
        {
            if (fit == GateFit.Fill) return sensorAspect > imageAspect ? GateFit.Vertical : GateFit.Horizontal;
            if (fit == GateFit.Overscan) return sensorAspect > imageAspect ? GateFit.Horizontal : GateFit.Vertical;
            return fit;
        }

        /// <summary>
        /// A Unity physical camera (usePhysicalProperties): focal length and sensor in mm, lens shift
        /// in fractions of the sensor size. Unity's projection gets m02 = 2 sx', m12 = 2 sy' (the shift
        /// as a fraction of the gate), so the principal point moves against the shift in x and, with
        /// y down in pixels, along it in y: cx = W/2 - sx Sw kx, cy = H/2 + sy Sh ky, k = pixels per mm.
        /// </summary>
        public static Intrinsics FromPhysical(double focalMm, double sensorWidthMm, double sensorHeightMm,
            double lensShiftX, double lensShiftY, GateFit gateFit, int width, int height)
        {
            CheckSize(width, height);
            if (!(focalMm > 0) || !(sensorWidthMm > 0) || !(sensorHeightMm > 0))
                throw new ArgumentException("focal length and sensor size must be positive");
            double aspect = (double)width / height;
            double sensorAspect = sensorWidthMm / sensorHeightMm;
            GateFit fit = ResolveGateFit(gateFit, aspect, sensorAspect);
            double kx, ky;
            if (fit == GateFit.Vertical)
            {
                kx = ky = height / sensorHeightMm;
            }
            else if (fit == GateFit.Horizontal)
            {
                kx = ky = width / sensorWidthMm;
            }
            else
            {
                // None: the sensor is stretched onto the image; pixels are square only when the aspects match.
                kx = width / sensorWidthMm;
                ky = height / sensorHeightMm;
            }
            return new Intrinsics(focalMm * kx, focalMm * ky,
                0.5 * width - lensShiftX * sensorWidthMm * kx,
                0.5 * height + lensShiftY * sensorHeightMm * ky);
        }

        /// <summary>Focal length (px) for a field of view across the longer image side (our config convention).</summary>
        public static double FocalFromLongSideFov(double fovDeg, int width, int height)
        {
            CheckSize(width, height);
            if (!(fovDeg > 0 && fovDeg < 180)) throw new ArgumentException("field of view must lie in (0, 180) degrees, got " + fovDeg);
            return 0.5 * Math.Max(width, height) / Math.Tan(0.5 * Num.Deg2Rad(fovDeg));
        }

        /// <summary>Unity's vertical Camera.fieldOfView (degrees) for a focal length fy in pixels.</summary>
        public static double VerticalFovDeg(double fy, int height)
        {
            return Num.Rad2Deg(2.0 * Math.Atan(0.5 * height / fy));
        }

        /// <summary>Pixel coordinates of a camera-frame point (OpenCV frame); false when it is not in front.</summary>
        public bool Project(Vec3 pCam, out double u, out double v)
        {
            u = Fx * pCam.X / pCam.Z + Cx;
            v = Fy * pCam.Y / pCam.Z + Cy;
            return pCam.Z > 0;
        }

        public double[][] ToRows()
        {
            return new[] { new[] { Fx, 0.0, Cx }, new[] { 0.0, Fy, Cy }, new[] { 0.0, 0.0, 1.0 } };
        }

        static void CheckSize(int width, int height)
        {
            if (width <= 0 || height <= 0) throw new ArgumentException("image size must be positive, got " + width + "x" + height);
        }
    }

    /// <summary>The Unity physical-camera settings that reproduce a given K exactly.</summary>
    public struct PhysicalCamera
    {
        public double FocalLengthMm, SensorWidthMm, SensorHeightMm, LensShiftX, LensShiftY;
        public GateFit GateFit;

        /// <summary>
        /// Gate fit None with the sensor height fixed: focal = fy Sh / H, sensor width = focal W / fx,
        /// lens shift = ((W/2 - cx) / W, (cy - H/2) / H). Square pixels give a sensor with the image's aspect.
        /// </summary>
        public static PhysicalCamera FromIntrinsics(Intrinsics k, int width, int height, double sensorHeightMm)
        {
            if (width <= 0 || height <= 0) throw new ArgumentException("image size must be positive");
            if (!(k.Fx > 0) || !(k.Fy > 0)) throw new ArgumentException("focal lengths must be positive");
            PhysicalCamera p;
            p.SensorHeightMm = sensorHeightMm;
            p.FocalLengthMm = k.Fy * sensorHeightMm / height;
            p.SensorWidthMm = p.FocalLengthMm * width / k.Fx;
            p.LensShiftX = (0.5 * width - k.Cx) / width;
            p.LensShiftY = (k.Cy - 0.5 * height) / height;
            p.GateFit = GateFit.None;
            return p;
        }

        public Intrinsics ToIntrinsics(int width, int height)
        {
            return Intrinsics.FromPhysical(FocalLengthMm, SensorWidthMm, SensorHeightMm, LensShiftX, LensShiftY, GateFit, width, height);
        }
    }
}
