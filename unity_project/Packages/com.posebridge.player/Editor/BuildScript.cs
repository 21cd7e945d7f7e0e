// One-line headless Linux build:
//   Unity -batchmode -quit -projectPath unity_project -executeMethod PoseBridge.Editor.BuildScript.BuildLinux \
//         -buildOutput Builds/Linux/posebridge-player.x86_64 -logFile -
// It (re)creates the generator scene (camera, light, agent, player, materials) so the repository needs
// no hand-edited scene or material YAML, then builds a normal Linux player (NOT a dedicated-server
// build, which strips rendering). Run that player with -batchmode and without -nographics.
using System;
using System.IO;
using PoseBridge.Runtime;
using Unity.MLAgents.Actuators;
using Unity.MLAgents.Policies;
using UnityEditor;
using UnityEditor.Build;
using UnityEditor.Build.Reporting;
using UnityEditor.SceneManagement;
using UnityEngine;
using UnityEngine.SceneManagement;

namespace PoseBridge.Editor
{
    public static class BuildScript
    {
        public const string ScenePath = "Assets/PoseBridge/PoseBridgeGenerator.unity";
        const string AssetDir = "Assets/PoseBridge";
        const string DefaultOutput = "Builds/Linux/posebridge-player.x86_64";

        [MenuItem("PoseBridge/Create Generator Scene")]
        public static void CreateScene()
        {
            Directory.CreateDirectory(AssetDir);
            Material body = SaveMaterial("Standard", AssetDir + "/PoseBridgeBody.mat");
            Material background = SaveMaterial("Unlit/Texture", AssetDir + "/PoseBridgeBackground.mat");

            Scene scene = EditorSceneManager.NewScene(NewSceneSetup.EmptyScene, NewSceneMode.Single);
            var camGo = new GameObject("RenderCamera");
            Camera cam = camGo.AddComponent<Camera>();
            cam.enabled = false;
            var sunGo = new GameObject("Sun");
            Light sun = sunGo.AddComponent<Light>();
            sun.type = LightType.Directional;

            var playerGo = new GameObject("PoseBridgePlayer");
            BehaviorParameters behavior = playerGo.AddComponent<BehaviorParameters>();
            behavior.BehaviorName = GeneratorAgent.BehaviorName;
            behavior.BehaviorType = BehaviorType.Default;
            behavior.BrainParameters.VectorObservationSize = GeneratorAgent.ObservationSize;
            behavior.BrainParameters.ActionSpec = ActionSpec.MakeContinuous(1);
            GeneratorAgent agent = playerGo.AddComponent<GeneratorAgent>();
            PoseBridgePlayer player = playerGo.AddComponent<PoseBridgePlayer>();
            player.renderCamera = cam;
            player.sun = sun;
            player.agent = agent;
            player.bodyMaterial = body;
            player.backgroundMaterial = background;
            foreach (string guid in AssetDatabase.FindAssets("t:AnimationClip", new[] { "Assets" }))
                player.clips.Add(AssetDatabase.LoadAssetAtPath<AnimationClip>(AssetDatabase.GUIDToAssetPath(guid)));
            // Bodies exported by `posebridge export-body` into StreamingAssets replace the mannequin.
            string bodies = Path.Combine(Application.streamingAssetsPath, AnnyBodyProvider.DefaultFolder);
            if (Directory.Exists(bodies) && Directory.GetFiles(bodies, "*.glb").Length > 0)
            {
                playerGo.AddComponent<AnnyBodyProvider>();
                player.useMannequin = false;
            }

            EditorSceneManager.SaveScene(scene, ScenePath);
            EditorBuildSettings.scenes = new[] { new EditorBuildSettingsScene(ScenePath, true) };
            AssetDatabase.SaveAssets();
        }

        static Material SaveMaterial(string shaderName, string path)
        {
            Shader shader = Shader.Find(shaderName);
            if (shader == null) throw new InvalidOperationException("shader " + shaderName + " not found (built-in render pipeline expected)");
            var m = new Material(shader);
            AssetDatabase.CreateAsset(m, path);
            return m;
        }

        [MenuItem("PoseBridge/Build Linux Player")]
        public static void BuildLinux()
        {
            string output = ArgumentAfter("-buildOutput") ?? DefaultOutput;
            CreateScene();
            PlayerSettings.SetScriptingBackend(NamedBuildTarget.Standalone, ScriptingImplementation.Mono2x);
            PlayerSettings.runInBackground = true;
            PlayerSettings.visibleInBackground = true;
            PlayerSettings.fullScreenMode = FullScreenMode.Windowed;
            PlayerSettings.defaultScreenWidth = 256;
            PlayerSettings.defaultScreenHeight = 256;
            PlayerSettings.usePlayerLog = true;
            var options = new BuildPlayerOptions
            {
                scenes = new[] { ScenePath },
                locationPathName = output,
                target = BuildTarget.StandaloneLinux64,
                subtarget = (int)StandaloneBuildSubtarget.Player,
                options = BuildOptions.None,
            };
            BuildReport report = BuildPipeline.BuildPlayer(options);
            Debug.Log("posebridge: build " + report.summary.result + " -> " + output + " (" + report.summary.totalErrors + " errors)");
            if (Application.isBatchMode) EditorApplication.Exit(report.summary.result == BuildResult.Succeeded ? 0 : 1);
        }

        static string ArgumentAfter(string flag)
        {
            string[] args = Environment.GetCommandLineArgs();
            for (int i = 0; i < args.Length - 1; i++)
                if (args[i] == flag) return args[i + 1];
            return null;
        }
    }
}
