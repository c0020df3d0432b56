"""Build stage: a kernel from a source and a config recipe, in a container
(kbuild), with warm output trees, the container engine and toolchain images."""

from .kbuild import ARTIFACTS, Build, artifact_key, build, build_source, cpu_seconds, recipe_key

__all__ = ["ARTIFACTS", "Build", "artifact_key", "build", "build_source", "cpu_seconds",
           "recipe_key"]
