"""The local runtime: template.yaml on an AWS emulator, its API and queue consumers in-process."""
