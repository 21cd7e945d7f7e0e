// Supplies posebridge bodies (.glb files written by `posebridge export-body`) to the player. Put the
// files in Assets/StreamingAssets/PoseBridge/Bodies/ (or set `folder`) and add this component to the
// PoseBridgePlayer object (BuildScript does so when that folder holds bodies). Each file becomes one
// Humanoid avatar; the player picks one per frame like any other avatar.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using UnityEngine;

namespace PoseBridge.Runtime
{
    public sealed class AnnyBodyProvider : MonoBehaviour, IAvatarProvider, IAvatarLoader
    {
        public const string DefaultFolder = "PoseBridge/Bodies";

        [Tooltip("Folder of body .glb files, relative to StreamingAssets (or absolute).")]
        public string folder = DefaultFolder;
        [Tooltip("Material of the body's clothing-group submeshes; the player's body material when empty.")]
        public Material material;

        readonly List<AnnyBody> bodies = new List<AnnyBody>();
        Transform holder;

        /// <summary>The folder this provider reads, resolved against StreamingAssets.</summary>
        public string ResolvedFolder => Path.IsPathRooted(folder) ? folder : Path.Combine(Application.streamingAssetsPath, folder);

        public async Task LoadAsync()
        {
            string dir = ResolvedFolder;
            string[] files = Directory.Exists(dir) ? Directory.GetFiles(dir, "*.glb") : new string[0];
            Array.Sort(files, StringComparer.Ordinal);
            if (files.Length == 0)
                throw new InvalidOperationException("no body .glb files in " + dir + ": write one with `posebridge export-body --out " + Path.Combine(dir, "body0.glb") + "`");
            // Unity skins with at most 4 bones per vertex by default; the body needs up to 9.
            QualitySettings.skinWeights = SkinWeights.Unlimited;
            Material m = material;
            if (m == null)
            {
                PoseBridgePlayer player = GetComponent<PoseBridgePlayer>();
                m = player != null ? player.bodyMaterial : null;
            }
            if (m == null) throw new InvalidOperationException("AnnyBodyProvider: no material (set one, or the PoseBridgePlayer's bodyMaterial)");
            holder = new GameObject("PoseBridgeBodies").transform;
            holder.SetParent(transform, false);
            foreach (string f in files) bodies.Add(await AnnyBody.LoadAsync(f, holder, m));
        }

        public IEnumerable<HumanoidRig> CreateAvatars(Transform parent)
        {
            foreach (AnnyBody b in bodies)
            {
                b.transform.SetParent(parent, false);
                yield return b.Humanoid;
            }
        }
    }
}
