// Which Humanoid renders a frame: the procedural mannequin, user avatar prefabs (any Humanoid rig:
// Mixamo, Ready Player Me exports, ...), and rigs made by IAvatarProvider components (the hook for
// run-time avatar loaders). Each is instantiated once and activated per frame.
using System.Collections.Generic;
using PoseBridge.Core;
using UnityEngine;

namespace PoseBridge.Runtime
{
    /// <summary>Put a MonoBehaviour implementing this on the player's GameObject to supply avatars in code.</summary>
    public interface IAvatarProvider
    {
        IEnumerable<HumanoidRig> CreateAvatars(Transform parent);
    }

    /// <summary>A provider that loads its avatars asynchronously (files, glTFast): the player awaits it before the first frame.</summary>
    public interface IAvatarLoader
    {
        System.Threading.Tasks.Task LoadAsync();
    }

    public sealed class AvatarSpawner
    {
        readonly List<HumanoidRig> rigs = new List<HumanoidRig>();
        HumanoidRig active;

        public AvatarSpawner(Transform parent, bool mannequin, Material mannequinMaterial, IEnumerable<GameObject> prefabs, IEnumerable<IAvatarProvider> providers)
        {
            if (mannequin) rigs.Add(ProceduralMannequin.Build(parent, mannequinMaterial));
            foreach (GameObject prefab in prefabs)
            {
                if (prefab == null) continue;
                GameObject go = Object.Instantiate(prefab, parent);
                HumanoidRig rig = go.GetComponent<HumanoidRig>();
                if (rig == null) rig = go.AddComponent<HumanoidRig>();
                rig.Initialize(); // throws, naming the prefab, when it is not a Humanoid
                rigs.Add(rig);
            }
            foreach (IAvatarProvider provider in providers)
                foreach (HumanoidRig rig in provider.CreateAvatars(parent))
                {
                    rig.Initialize();
                    rigs.Add(rig);
                }
            if (rigs.Count == 0) throw new ConfigException("no avatars: enable the mannequin or add Humanoid avatar prefabs");
            foreach (HumanoidRig r in rigs) r.gameObject.SetActive(false);
        }

        public int Count => rigs.Count;

        public HumanoidRig Pick(FrameRng rng)
        {
            HumanoidRig next = rigs[rng.NextInt(rigs.Count)];
            if (active != next)
            {
                if (active != null) active.gameObject.SetActive(false);
                next.gameObject.SetActive(true);
                active = next;
            }
            active.transform.localPosition = Vector3.zero;
            active.transform.localRotation = Quaternion.identity;
            return active;
        }
    }
}
