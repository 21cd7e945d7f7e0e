// Per-frame randomization with the ranges of the run config's "scene" (generator.scene.SceneConfig):
// camera, body shape, clothing colours, lighting, background and occluders. Every draw comes from a
// FrameRng stream of (seed, frame id), so a frame can be regenerated alone (resume).
using System;
using System.Collections.Generic;
using System.IO;
using PoseBridge.Core;
using UnityEngine;
using UnityEngine.Rendering;

namespace PoseBridge.Runtime
{
    /// <summary>Places the Unity camera from a core-sampled camera (K, R, t) exactly.</summary>
    public static class CameraRandomizer
    {
        public const double SensorHeightMm = 24.0;

        public static void Apply(Camera camera, SampledCamera cam)
        {
            PhysicalCamera p = PhysicalCamera.FromIntrinsics(cam.K, cam.Width, cam.Height, SensorHeightMm);
            camera.usePhysicalProperties = true;
            camera.gateFit = Camera.GateFitMode.None;
            camera.sensorSize = new Vector2((float)p.SensorWidthMm, (float)p.SensorHeightMm);
            camera.focalLength = (float)p.FocalLengthMm;
            camera.lensShift = new Vector2((float)p.LensShiftX, (float)p.LensShiftY);
            Vec3 position;
            Quat rotation;
            UnityFrames.CameraPose(cam.R, cam.T, out position, out rotation);
            camera.transform.SetPositionAndRotation(position.ToUnity(), rotation.ToUnity());
        }
    }

    /// <summary>Body height (uniform scale about the floor) and girth (limb thickness) of the mannequin.</summary>
    public sealed class BodyRandomizer
    {
        readonly Dictionary<Transform, Vector3> baseScales = new Dictionary<Transform, Vector3>();

        public BodyRandomizer(HumanoidRig rig)
        {
            foreach (Renderer r in rig.GetComponentsInChildren<Renderer>())
                if (r.name.StartsWith("mesh_")) baseScales[r.transform] = r.transform.localScale;
        }

        public void Apply(FrameRng rng, BodySettings s, HumanoidRig rig, out double height, out double girth)
        {
            height = rng.Uniform(s.HeightScale[0], s.HeightScale[1]);
            girth = rng.Uniform(s.Girth[0], s.Girth[1]);
            if (rig.body != null)
            {
                // The posebridge body's size and build come from its phenotype (export several bodies);
                // its bones are posed in world space, which a scaled root would distort.
                height = 1.0;
                girth = 1.0;
                rig.transform.localScale = Vector3.one;
                return;
            }
            rig.transform.localScale = Vector3.one * (float)height;
            foreach (KeyValuePair<Transform, Vector3> kv in baseScales)
                kv.Key.localScale = new Vector3(kv.Value.x * (float)girth, kv.Value.y, kv.Value.z * (float)girth);
        }
    }

    /// <summary>Skin, hair and clothing colours through MaterialPropertyBlocks (no material copies).</summary>
    public sealed class AppearanceRandomizer
    {
        // sRGB skin tones from light to dark, as generator/scene.py SKIN_TONES.
        static readonly Color[] SkinTones =
        {
            new Color(0.98f, 0.87f, 0.78f), new Color(0.95f, 0.79f, 0.67f), new Color(0.88f, 0.69f, 0.56f), new Color(0.78f, 0.57f, 0.42f),
            new Color(0.63f, 0.44f, 0.31f), new Color(0.47f, 0.31f, 0.21f), new Color(0.33f, 0.22f, 0.15f),
        };

        static readonly Color[] HairColors =
        {
            new Color(0.05f, 0.04f, 0.04f), new Color(0.17f, 0.11f, 0.07f), new Color(0.36f, 0.24f, 0.14f),
            new Color(0.76f, 0.62f, 0.40f), new Color(0.50f, 0.22f, 0.10f), new Color(0.62f, 0.61f, 0.60f),
        };

        static readonly int ColorId = Shader.PropertyToID("_Color");
        static readonly int BaseColorId = Shader.PropertyToID("_BaseColor");
        readonly MaterialPropertyBlock block = new MaterialPropertyBlock();

        public void Apply(FrameRng rng, AppearanceSettings s, HumanoidRig rig)
        {
            int tone = rng.NextInt(SkinTones.Length - 1);
            Color skin = Color.Lerp(SkinTones[tone], SkinTones[tone + 1], (float)rng.NextDouble());
            // The draw order is fixed (skin, hair, top, bottom, shoes), whatever the avatar.
            Color hair = HairColors[rng.NextInt(HairColors.Length)];
            Color top = Cloth(rng, s), bottom = Cloth(rng, s), shoes = Cloth(rng, s);
            Paint(rig.skin, skin);
            Paint(rig.hair, hair);
            Paint(rig.top, top);
            Paint(rig.bottom, bottom);
            Paint(rig.shoes, shoes);
            if (rig.body != null) rig.body.Paint(skin, hair, top, bottom, shoes); // the body's clothing-group submeshes
        }

        static Color Cloth(FrameRng rng, AppearanceSettings s)
        {
            return Color.HSVToRGB((float)rng.NextDouble(), (float)rng.Uniform(s.ClothSaturation[0], s.ClothSaturation[1]),
                (float)rng.Uniform(s.ClothValue[0], s.ClothValue[1]));
        }

        void Paint(List<Renderer> renderers, Color c)
        {
            foreach (Renderer r in renderers)
            {
                r.GetPropertyBlock(block);
                block.SetColor(ColorId, c);
                block.SetColor(BaseColorId, c);
                r.SetPropertyBlock(block);
            }
        }
    }

    /// <summary>One directional light from the camera's side of the person, plus a trilight ambient.</summary>
    public static class LightingRandomizer
    {
        public static void Apply(FrameRng rng, LightingSettings s, Light sun, double cameraAzimuthRad, out double intensity)
        {
            double elevation = Num.Deg2Rad(rng.Uniform(s.ElevationDeg[0], s.ElevationDeg[1]));
            double azimuth = cameraAzimuthRad + Num.Deg2Rad(rng.Uniform(s.AzimuthFromCameraDeg[0], s.AzimuthFromCameraDeg[1]));
            // Towards the light in our world frame (z up), then into Unity's frame.
            var toLight = new Vec3(Math.Cos(elevation) * Math.Cos(azimuth), Math.Cos(elevation) * Math.Sin(azimuth), Math.Sin(elevation));
            Vector3 dir = (UnityFrames.UnityToWorldAxes * toLight).ToUnity(); // A is its own inverse
            sun.type = LightType.Directional;
            sun.transform.rotation = Quaternion.LookRotation(-dir);
            intensity = rng.Uniform(s.Intensity[0], s.Intensity[1]);
            sun.intensity = (float)intensity;
            float t = (float)s.Tint;
            sun.color = new Color(1 + t * (float)rng.Uniform(-1, 1), 1 + t * (float)rng.Uniform(-1, 1), 1 + t * (float)rng.Uniform(-1, 1));
            sun.shadows = LightShadows.Soft;
            float ambient = (float)rng.Uniform(s.Ambient[0], s.Ambient[1]);
            float ground = ambient * (float)rng.Uniform(0.3, 0.7);
            RenderSettings.ambientMode = AmbientMode.Trilight;
            RenderSettings.ambientSkyColor = new Color(ambient, ambient, ambient);
            RenderSettings.ambientEquatorColor = new Color(ambient, ambient, ambient) * 0.8f;
            RenderSettings.ambientGroundColor = new Color(ground, ground, ground);
        }
    }

    /// <summary>
    /// Solid colour, gradient, value noise, or a photo from the config's folder, on a quad that fills
    /// the camera's view behind the scene (the camera clears to the solid colour).
    /// </summary>
    public sealed class BackgroundRandomizer
    {
        const int NoiseSize = 128;
        readonly Renderer quad;
        readonly Texture2D generated = new Texture2D(NoiseSize, NoiseSize, TextureFormat.RGB24, false);
        readonly List<string> photos = new List<string>();
        readonly Dictionary<int, Texture2D> photoCache = new Dictionary<int, Texture2D>();
        readonly MaterialPropertyBlock block = new MaterialPropertyBlock();
        static readonly int MainTexId = Shader.PropertyToID("_MainTex");

        public BackgroundRandomizer(Camera camera, Material unlitMaterial, BackgroundSettings s)
        {
            var go = GameObject.CreatePrimitive(PrimitiveType.Quad);
            go.name = "PoseBridgeBackground";
            UnityEngine.Object.Destroy(go.GetComponent<Collider>()); // never occludes a ray cast
            go.transform.SetParent(camera.transform, false);
            quad = go.GetComponent<Renderer>();
            quad.sharedMaterial = unlitMaterial;
            quad.shadowCastingMode = ShadowCastingMode.Off;
            quad.receiveShadows = false;
            generated.wrapMode = TextureWrapMode.Clamp;
            if (s.PhotoDir != null)
            {
                if (!Directory.Exists(s.PhotoDir)) throw new ConfigException("scene.background.photo_dir: no such folder: " + s.PhotoDir);
                foreach (string f in Directory.GetFiles(s.PhotoDir))
                {
                    string ext = Path.GetExtension(f).ToLowerInvariant();
                    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") photos.Add(f);
                }
                photos.Sort(StringComparer.Ordinal);
            }
        }

        public string Apply(FrameRng rng, BackgroundSettings s, Camera camera, SampledCamera cam)
        {
            var kinds = new List<string>();
            var weights = new List<double>();
            foreach (KeyValuePair<string, double> kv in s.Weights)
            {
                if (kv.Value <= 0 || (kv.Key == "photo" && photos.Count == 0)) continue;
                kinds.Add(kv.Key);
                weights.Add(kv.Value);
            }
            string kind = kinds.Count == 0 ? "solid" : kinds[rng.Choice(weights.ToArray())];
            Color a = RandomColor(rng), b = RandomColor(rng);
            camera.clearFlags = CameraClearFlags.SolidColor;
            camera.backgroundColor = a;
            quad.enabled = kind != "solid";
            if (!quad.enabled) return kind;

            Texture2D tex = generated;
            if (kind == "gradient") FillGradient(a, b, rng.Uniform(0, 2 * Math.PI));
            else if (kind == "noise") FillNoise(rng, a, b);
            else tex = Photo(rng.NextInt(photos.Count));
            block.SetTexture(MainTexId, tex);
            quad.SetPropertyBlock(block);
            FitToView(camera, cam);
            return kind;
        }

        static Color RandomColor(FrameRng rng) => new Color((float)rng.NextDouble(), (float)rng.NextDouble(), (float)rng.NextDouble());

        void FillGradient(Color a, Color b, double angle)
        {
            var px = new Color32[NoiseSize * NoiseSize];
            float dx = (float)Math.Cos(angle), dy = (float)Math.Sin(angle);
            for (int y = 0; y < NoiseSize; y++)
                for (int x = 0; x < NoiseSize; x++)
                {
                    float u = ((x + 0.5f) / NoiseSize - 0.5f) * dx + ((y + 0.5f) / NoiseSize - 0.5f) * dy + 0.5f;
                    px[y * NoiseSize + x] = Color.Lerp(a, b, Mathf.Clamp01(u));
                }
            generated.filterMode = FilterMode.Bilinear;
            generated.SetPixels32(px);
            generated.Apply(false);
        }

        void FillNoise(FrameRng rng, Color a, Color b)
        {
            // Value noise on a coarse lattice, bilinearly magnified by the sampler.
            int cells = 2 + rng.NextInt(30);
            var px = new Color32[NoiseSize * NoiseSize];
            var lattice = new float[(cells + 1) * (cells + 1)];
            for (int i = 0; i < lattice.Length; i++) lattice[i] = (float)rng.NextDouble();
            for (int y = 0; y < NoiseSize; y++)
                for (int x = 0; x < NoiseSize; x++)
                {
                    float gx = (float)x / NoiseSize * cells, gy = (float)y / NoiseSize * cells;
                    int ix = (int)gx, iy = (int)gy;
                    float fx = gx - ix, fy = gy - iy;
                    float v = Mathf.Lerp(Mathf.Lerp(lattice[iy * (cells + 1) + ix], lattice[iy * (cells + 1) + ix + 1], fx),
                        Mathf.Lerp(lattice[(iy + 1) * (cells + 1) + ix], lattice[(iy + 1) * (cells + 1) + ix + 1], fx), fy);
                    px[y * NoiseSize + x] = Color.Lerp(a, b, v);
                }
            generated.filterMode = FilterMode.Bilinear;
            generated.SetPixels32(px);
            generated.Apply(false);
        }

        Texture2D Photo(int index)
        {
            Texture2D tex;
            if (photoCache.TryGetValue(index, out tex)) return tex;
            tex = new Texture2D(2, 2, TextureFormat.RGB24, false);
            if (!tex.LoadImage(File.ReadAllBytes(photos[index]))) throw new IOException(photos[index] + ": not a readable JPEG or PNG");
            if (photoCache.Count > 64) photoCache.Clear();
            photoCache[index] = tex;
            return tex;
        }

        // The quad spans the image's four corners at 90 % of the far plane, in the camera's local frame
        // (Unity camera: x right, y up, z forward), using the same K the ground truth uses.
        void FitToView(Camera camera, SampledCamera cam)
        {
            float d = camera.farClipPlane * 0.9f;
            double x0 = -cam.K.Cx / cam.K.Fx * d, x1 = (cam.Width - cam.K.Cx) / cam.K.Fx * d;
            double yTop = cam.K.Cy / cam.K.Fy * d, yBottom = -(cam.Height - cam.K.Cy) / cam.K.Fy * d;
            quad.transform.localPosition = new Vector3((float)(x0 + x1) / 2, (float)(yTop + yBottom) / 2, d);
            quad.transform.localRotation = Quaternion.identity;
            quad.transform.localScale = new Vector3((float)(x1 - x0), (float)(yTop - yBottom), 1);
        }
    }

    /// <summary>Boxes and cylinders between the camera and a body joint (generator.scene.sample_occluders' ranges).</summary>
    public sealed class OccluderRandomizer
    {
        readonly List<GameObject> boxes = new List<GameObject>(), cylinders = new List<GameObject>();
        readonly Transform parent;
        readonly Material material;
        readonly MaterialPropertyBlock block = new MaterialPropertyBlock();
        static readonly int ColorId = Shader.PropertyToID("_Color");

        public OccluderRandomizer(Transform parent, Material material)
        {
            this.parent = parent;
            this.material = material;
        }

        public int Apply(FrameRng rng, OccluderSettings s, Vec3[] jointsUnity, Vector3 cameraPosition)
        {
            foreach (GameObject g in boxes) g.SetActive(false);
            foreach (GameObject g in cylinders) g.SetActive(false);
            if (rng.NextDouble() >= s.Probability) return 0;
            int count = s.Count[0] + rng.NextInt(s.Count[1] - s.Count[0] + 1);
            double wBox, wCyl;
            s.Weights.TryGetValue("box", out wBox);
            s.Weights.TryGetValue("cylinder", out wCyl);
            int nBox = 0, nCyl = 0;
            for (int i = 0; i < count; i++)
            {
                bool box = rng.Choice(new[] { wBox, wCyl }) == 0;
                GameObject g = Take(box ? boxes : cylinders, box ? nBox++ : nCyl++, box ? PrimitiveType.Cube : PrimitiveType.Cylinder);
                Vector3 joint = jointsUnity[rng.NextInt(jointsUnity.Length)].ToUnity();
                g.transform.position = Vector3.Lerp(joint, cameraPosition, (float)rng.Uniform(s.TowardCamera[0], s.TowardCamera[1]));
                g.transform.rotation = RandomRotation(rng);
                float half = (float)rng.Uniform(s.HalfExtentMm[0], s.HalfExtentMm[1]) / 1000f;
                g.transform.localScale = box
                    ? new Vector3(2 * half, 2 * half * (float)rng.Uniform(0.5, 1.5), 2 * half * (float)rng.Uniform(0.5, 1.5))
                    : new Vector3(2 * half * (float)rng.Uniform(0.5, 1), half * (float)rng.Uniform(1, 2.5), 2 * half * (float)rng.Uniform(0.5, 1));
                Renderer r = g.GetComponent<Renderer>();
                block.SetColor(ColorId, new Color((float)rng.NextDouble(), (float)rng.NextDouble(), (float)rng.NextDouble()));
                r.SetPropertyBlock(block);
                g.SetActive(true);
            }
            return count;
        }

        static Quaternion RandomRotation(FrameRng rng)
        {
            // Uniform over SO(3) (Shoemake): a unit quaternion from three uniforms.
            double u1 = rng.NextDouble(), u2 = rng.NextDouble() * 2 * Math.PI, u3 = rng.NextDouble() * 2 * Math.PI;
            double a = Math.Sqrt(1 - u1), b = Math.Sqrt(u1);
            return new Quaternion((float)(a * Math.Sin(u2)), (float)(a * Math.Cos(u2)), (float)(b * Math.Sin(u3)), (float)(b * Math.Cos(u3)));
        }

        GameObject Take(List<GameObject> pool, int index, PrimitiveType type)
        {
            if (index < pool.Count) return pool[index];
            GameObject g = GameObject.CreatePrimitive(type);
            g.name = "PoseBridgeOccluder_" + type + "_" + index;
            g.transform.SetParent(parent, false);
            g.GetComponent<Renderer>().sharedMaterial = material;
            pool.Add(g);
            return g;
        }
    }
}
