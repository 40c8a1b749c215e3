#!/usr/bin/env bash
# demo.sh — install forklift and walk through chapter 7 of "Docker in Action"
# (packaging software in images) on a local busybox:latest built from busybox-static.
#
# Uses its own store (FORKLIFT_ROOT, default /var/tmp/forklift-demo) so it never
# touches images you keep in /var/lib/forklift.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/install.sh"

export FORKLIFT_ROOT=${FORKLIFT_ROOT:-/var/tmp/forklift-demo}
work=$(mktemp -d /var/tmp/forklift-demo-work.XXXXXX)
trap 'rm -rf "$work"' EXIT
fl() { echo "+ forklift $*" >&2; forklift "$@"; }

# start from a clean demo store
for c in $(forklift ps -aq 2>/dev/null); do forklift rm -f "$c" >/dev/null; done

bash "$here/scripts/make-busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
fl image import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["sh"]' -m "busybox from busybox-static" "$work/busybox.tar" busybox:latest

echo "== a container's changes, seen and committed"
fl container run --name hw_container busybox:latest touch /HelloWorld
fl container diff hw_container
fl container commit -m "add hello" -a "Packager <packager@example.org>" hw_container hw_image
fl container export hw_container -o "$work/flat.tar"
fl container rm -vf hw_container
fl container run --rm hw_image ls -l /HelloWorld

echo "== an entrypoint carried into a commit"
fl container run --name cmd-git --entrypoint echo busybox:latest "git would run here"
fl container commit cmd-git ubuntu-git-like
fl image inspect --format '{{json .Config.Entrypoint}}' ubuntu-git-like
fl container run --rm ubuntu-git-like "with other arguments"
fl container rm cmd-git

echo "== configuration carried forward"
fl container run --name cfg -e GREETING=hello -w /tmp --label owner=packager busybox:latest touch x
fl container commit -c 'CMD ["sh", "-c", "echo $GREETING from $PWD"]' cfg greeter:1
fl container run --rm greeter:1
fl container rm cfg

echo "== tags and history"
fl image tag hw_image:latest hw_image:2.7
fl image history hw_image
fl image ls

echo "== flattening: export and import"
fl image import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' -m "flat" "$work/flat.tar" flat:1
fl image history flat:1
fl container run --rm flat:1 ls -l /HelloWorld

echo "== the same by a Dockerfile: build"
mkdir -p "$work/app"
echo "hello from a built image" > "$work/app/message.txt"
cat > "$work/app/Dockerfile" <<'EOF'
FROM busybox:latest
ARG GREETING=hello
COPY message.txt /srv/
RUN touch /HelloWorld && echo "$GREETING" > /srv/greeting
ENTRYPOINT ["cat"]
CMD ["/srv/message.txt"]
EOF
fl build --network none -t built:1 --build-arg GREETING=hi "$work/app"
fl container run --rm built:1
fl container run --rm built:1 /srv/greeting
fl build --network none -t built:1 --build-arg GREETING=hi "$work/app" | grep CACHED
fl image history built:1

echo "== inspect"
fl image inspect --format '{{.Id}} {{json .RepoTags}} {{.Author}} {{.Comment}}' hw_image
echo "demo complete (store: $FORKLIFT_ROOT)"
