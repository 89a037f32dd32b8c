#!/bin/sh
# Files a step writes are group-writable, so the host user who shares the group can manage
# run folders that kfp.local's DockerRunner mounts. Kubernetes pods set their own command
# and skip this script; there, an emptyDir or the object store holds the outputs.
umask 0002
exec "$@"
