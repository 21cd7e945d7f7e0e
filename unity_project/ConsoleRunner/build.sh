#!/usr/bin/env bash
# Compiles the engine-free core (the Core assembly of the UPM package), its EditMode tests and the console
# runner with mono's mcs: C# 7.0, the subset Unity and mcs share. Usage: build.sh OUT.exe
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$here/../Packages/com.posebridge.player"
out="${1:-$here/bin/posebridge-core-runner.exe}"
mkdir -p "$(dirname "$out")"
exec mcs -langversion:7 -warnaserror+ -nowarn:1591 -r:System.Numerics -out:"$out" \
  "$pkg"/Core/*.cs "$pkg"/Tests/EditMode/*.cs "$here"/NUnitShim.cs "$here"/Program.cs
