"""Static checks of unity_project/ that need no Unity: every .cs file parses, and the package
manifest, asmdefs, package.json and NuGet config parse and reference only what exists.

The Runtime and Editor assemblies need UnityEngine and cannot be compiled here; tree-sitter is their
syntax gate (the Core assembly is compiled for real by tests/test_unity_core.py).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tree_sitter_c_sharp
import yaml
from tree_sitter import Language, Parser

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "unity_project"
PACKAGE = PROJECT / "Packages" / "com.posebridge.player"
CS_FILES = sorted(PROJECT.rglob("*.cs"))

# Assemblies that come from Unity packages, and the package that provides each.
EXTERNAL_ASSEMBLIES = {
    "Unity.ML-Agents": "com.unity.ml-agents",
    "glTFast": "com.unity.cloud.gltfast",  # glTFast 6.x's runtime assembly (namespace GLTFast)
    "UnityEngine.TestRunner": "com.unity.test-framework",
    "UnityEditor.TestRunner": "com.unity.test-framework",
}
EXTERNAL_DLLS = {"nunit.framework.dll": "com.unity.test-framework"}  # via its com.unity.ext.nunit dependency
PLATFORMS = {"Editor", "LinuxStandalone64", "WindowsStandalone64", "macOSStandalone"}


@pytest.fixture(scope="module")
def parser() -> Parser:
    return Parser(Language(tree_sitter_c_sharp.language()))


def _problems(node, path: Path) -> list[str]:
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            kind = "MISSING " + n.type if n.is_missing else "ERROR"
            out.append(f"{path.relative_to(ROOT)}:{n.start_point[0] + 1}:{n.start_point[1] + 1}: {kind}")
        stack.extend(n.children)
    return out


def test_every_cs_file_parses_without_error_or_missing_nodes(parser):
    assert len(CS_FILES) >= 20, [str(p) for p in CS_FILES]
    problems = []
    for path in CS_FILES:
        problems += _problems(parser.parse(path.read_bytes()).root_node, path)
    assert not problems, "\n".join(problems)


def test_the_syntax_gate_catches_a_missing_semicolon(parser):
    bad = b"class A { void F() { int x = 1 } }"
    assert _problems(parser.parse(bad).root_node, ROOT / "x.cs")


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        pytest.fail(f"{path.relative_to(ROOT)}: not valid JSON: {e}")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return _json(PROJECT / "Packages" / "manifest.json")


def test_manifest_pins_ml_agents_with_communicator_1_5_and_names_real_packages(manifest):
    deps = manifest["dependencies"]
    # com.unity.ml-agents 4.0.x speaks communicator API 1.5.0, the version mlagents-envs 0.28 checks.
    assert deps["com.unity.ml-agents"] == "4.0.0"
    for name, version in deps.items():
        assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", name), name
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", version) or version.startswith(("https://", "file:")), f"{name}: {version}"
        if version.startswith("file:"):
            assert (PROJECT / "Packages" / version[5:]).is_dir(), f"{name}: {version} does not exist"
        if version.startswith("https://"):
            assert re.search(r"\.git\?path=/[^#]+#v\d+\.\d+\.\d+$", version), f"{name}: pin a tag of the git package: {version}"
    for name in manifest.get("testables", []):
        assert (PROJECT / "Packages" / name / "package.json").is_file(), f"testable {name} is not an embedded package"


def test_package_json_names_its_folder_and_depends_on_manifest_packages(manifest):
    pkg = _json(PACKAGE / "package.json")
    assert pkg["name"] == PACKAGE.name
    assert re.fullmatch(r"\d+\.\d+\.\d+", pkg["version"])
    assert re.fullmatch(r"\d{4}\.\d+", pkg["unity"])
    for dep, version in pkg["dependencies"].items():
        assert dep.startswith("com.unity.modules.") or manifest["dependencies"].get(dep) == version, f"{dep} {version} is not in the project manifest"


def test_asmdefs_parse_and_reference_only_what_exists(manifest):
    asmdefs = {p: _json(p) for p in PROJECT.rglob("*.asmdef")}
    names = [d["name"] for d in asmdefs.values()]
    assert len(names) == len(set(names)) == 4, names
    nuget = {e.get("id") for e in ET.parse(PROJECT / "Assets" / "packages.config").getroot()}
    for path, d in asmdefs.items():
        where = path.relative_to(ROOT)
        for ref in d.get("references", []):
            if ref in names:
                continue
            assert ref in EXTERNAL_ASSEMBLIES, f"{where}: unknown assembly reference {ref}"
            assert EXTERNAL_ASSEMBLIES[ref] in manifest["dependencies"], f"{where}: {ref} needs {EXTERNAL_ASSEMBLIES[ref]} in the manifest"
        for dll in d.get("precompiledReferences", []):
            assert dll in EXTERNAL_DLLS or dll[:-4] in nuget, f"{where}: {dll} is neither a package DLL nor in packages.config"
            if dll in EXTERNAL_DLLS:
                assert EXTERNAL_DLLS[dll] in manifest["dependencies"]
        assert not d.get("precompiledReferences") or d.get("overrideReferences"), f"{where}: precompiledReferences need overrideReferences"
        assert set(d.get("includePlatforms", [])) <= PLATFORMS, where
        # Every .cs file under the asmdef's folder belongs to it: the folder must hold code.
        assert any(path.parent.rglob("*.cs")), f"{where}: no C# files"
    core = _json(PACKAGE / "Core" / "PoseBridge.Core.asmdef")
    assert core["noEngineReferences"] is True and core["references"] == []
    tests = _json(PACKAGE / "Tests" / "EditMode" / "PoseBridge.Core.Tests.asmdef")
    assert tests["includePlatforms"] == ["Editor"] and "UNITY_INCLUDE_TESTS" in tests["defineConstraints"]


def test_core_is_engine_free_and_runtime_is_not():
    for path in (PACKAGE / "Core").glob("*.cs"):
        assert not re.search(r"^\s*using\s+Unity", path.read_text(), re.M), f"{path.name} uses a Unity namespace"
    runtime = "".join(p.read_text() for p in (PACKAGE / "Runtime").rglob("*.cs"))
    assert "using UnityEngine;" in runtime and "using Unity.MLAgents" in runtime


def test_package_assets_have_meta_files_with_unique_guids():
    """A package added by git URL is immutable: Unity ignores any asset without a committed .meta."""
    guids = {}
    for path in PACKAGE.rglob("*"):
        if path.suffix == ".meta":
            target = path.with_name(path.name[: -len(".meta")])
            assert target.exists(), f"{path.relative_to(ROOT)}: orphan .meta"
            m = re.search(r"^guid: ([0-9a-f]{32})$", path.read_text(), re.M)
            assert m, f"{path.relative_to(ROOT)}: no guid"
            assert m.group(1) not in guids, f"{path.relative_to(ROOT)} repeats the guid of {guids[m.group(1)]}"
            guids[m.group(1)] = path.relative_to(ROOT)
        else:
            assert path.with_name(path.name + ".meta").is_file(), f"{path.relative_to(ROOT)} has no .meta"
    assert len(guids) >= 30


def test_netmq_rules_are_followed():
    """AsyncIO.ForceDotNet.Force() before the first socket; sockets disposed before NetMQConfig.Cleanup(false)."""
    src = (PACKAGE / "Runtime" / "ZmqPusher.cs").read_text()
    force, socket = src.index("AsyncIO.ForceDotNet.Force()"), src.index("new PushSocket(")
    assert force < socket
    assert "socket?.Dispose()" in src and "NetMQConfig.Cleanup(false)" in src
    player = (PACKAGE / "Runtime" / "PoseBridgePlayer.cs").read_text()
    shutdown = player[player.index("void ShutdownPipeline()") :]
    assert shutdown.index("pipeline.Dispose()") < shutdown.index("ZmqPusher.Cleanup()")


def test_netmq_comes_from_nuget_and_the_editor_version_is_unity_6_lts():
    packages = {e.get("id"): e.get("version") for e in ET.parse(PROJECT / "Assets" / "packages.config").getroot()}
    assert packages["NetMQ"] == "4.0.1.13" and "AsyncIO" in packages and "NaCl.Net" in packages
    version = (PROJECT / "ProjectSettings" / "ProjectVersion.txt").read_text()
    assert re.search(r"^m_EditorVersion: 6000\.0\.\d+f\d+$", version, re.M), version


def test_gameci_workflow_parses_and_says_it_cannot_run_here():
    path = PROJECT / ".github" / "workflows" / "unity.yml"
    text = path.read_text()
    assert "CANNOT RUN" in text.split("\nname:")[0]
    wf = yaml.safe_load(text)
    steps = [s.get("uses", "") for job in wf["jobs"].values() for s in job.get("steps", [])]
    assert any(s.startswith("game-ci/unity-test-runner@") for s in steps) and any(s.startswith("game-ci/unity-builder@") for s in steps)
    build = next(s for job in wf["jobs"].values() for s in job.get("steps", []) if s.get("uses", "").startswith("game-ci/unity-builder@"))
    assert build["with"]["buildMethod"] == "PoseBridge.Editor.BuildScript.BuildLinux"
    assert "BuildLinux" in (PACKAGE / "Editor" / "BuildScript.cs").read_text()


def test_the_body_is_imported_with_gltfast_and_posed_by_the_core(manifest):
    """The posebridge body (.glb from `posebridge export-body`): glTFast pinned in the project and the
    package, the Runtime referencing its assembly, and the engine-facing code going through the
    engine-free core that tests/test_unity_core.py and tests/test_body_gltf.py check against Python."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["dependencies"]["com.unity.cloud.gltfast"])
    runtime = _json(PACKAGE / "Runtime" / "PoseBridge.Runtime.asmdef")
    assert "glTFast" in runtime["references"]
    body = (PACKAGE / "Runtime" / "Avatars" / "AnnyBody.cs").read_text()
    for call in ("LoadGltfBinary(", "InstantiateMainSceneAsync(", "BodyGlb.Load(", "Retarget.PoseBody(", "UnityBoneTransforms(",
                 "SetBoneWeights(", "AvatarBuilder.BuildHumanAvatar(", "Data.JointsUnity("):
        assert call in body, call
    assert "rig.body.ApplyJoints(" in (PACKAGE / "Runtime" / "Avatars" / "PoseDriver.cs").read_text()
    assert "body.JointsUnity()" in (PACKAGE / "Runtime" / "Avatars" / "HumanoidRig.cs").read_text()
    assert "GetComponents<IAvatarLoader>()" in (PACKAGE / "Runtime" / "PoseBridgePlayer.cs").read_text()
    assert "SkinWeights.Unlimited" in (PACKAGE / "Runtime" / "Avatars" / "AnnyBodyProvider.cs").read_text()
