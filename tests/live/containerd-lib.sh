#!/usr/bin/env bash
# A real container runtime for the live tests of `palisade run --inventory containerd:SOCK`:
# a private containerd, a local busybox image, containers on a CNI bridge in a "node"
# network namespace, and the bridge's traffic steered into NFQUEUE 0 there. Source it
# after tests/live/lib.sh (it uses netns_init, ns_create, ns_exec, ns_tmp, fail, ok).
#
#   node (netns): containerd, palisade, bridge cni-pal0 10.99.7.1/24
#     |-- veth -- container netns c-web (10.99.7.2), c-db (10.99.7.3), ...
#
# ctrd_node: netns_init (unless done) and the node namespace (short name CTRD_NODE=node);
#   installs the cleanup trap: ctrd_cleanup, then netns's cleanup.
# ctrd_start: a private containerd in the node namespace (its own config, root, state,
#   grpc socket CTRD_SOCK=$(ns_tmp)/containerd.sock and ttrpc socket; no CRI plugin);
#   returns once `ctr version` answers. Its log is $(ns_tmp)/containerd.log.
# ctrd_image: packs /bin/busybox (static) into a one-layer OCI image and imports it as
#   CTRD_IMAGE (localhost/palisade-test/busybox:1) into containerd namespace CTRD_NS
#   (palisade); CTRD_IMAGE_DIGEST is its digest as `ctr images ls` prints it.
# ctrd_steer: br_netfilter in the node namespace (bridged IPv4/IPv6 frames cross
#   iptables' FORWARD) and deploy/nfqueue-rules.sh queueing bridged frames to NFQUEUE 0
#   with --queue-bypass (they flow while no daemon is bound).
# ctrd_queued: how many packets the NFQUEUE rule has matched so far (IPv4).
# ctrd_run NAME IP [KEY=VALUE...] [-- CMD...]: a container NAME (its containerd id) with
#   container labels KEY=VALUE, in its own network namespace c-NAME, plugged into the
#   bridge by the CNI bridge plugin with static IPAM address IP/24; runs CMD (default
#   `sleep 3600`). Sets CTRD_IP[NAME], CTRD_PID[NAME] (the task's pid in the host's pid
#   namespace), CTRD_NETNS[NAME] (/var/run/netns/...). Its output goes to
#   $(ns_tmp)/ctr-NAME.log. The node and the other containers forget any neighbour entry
#   for IP (it may have been another container's MAC a moment ago).
# ctrd_stop NAME: SIGKILL to the task, task and container deleted, CNI DEL, its network
#   namespace deleted, so IP can be given to another container.
# ctrd_exec NAME CMD...: runs CMD in the running container NAME (`ctr task exec`), stdout
#   and stderr to ours, its exit status returned.
# ctrd_get NAME URL [SECONDS]: the body of URL fetched by busybox wget inside NAME
#   (timeout SECONDS, default 3); fails when wget does.
# ctrd_wait_http NAME URL [SECONDS]: waits until ctrd_get NAME URL succeeds (default 5 s).
# ctrd_ctr ARGS...: ctr against the private containerd, in namespace CTRD_NS.
# ctrd_cleanup: kills and deletes every task and container of the private containerd,
#   stops containerd and its shims, removes the cgroups the containers used; netns's
#   cleanup (run right after by the trap) deletes the namespaces, and with them the
#   bridge and veths, and the scratch directory with containerd's root and state.
#
# Isolation from a system containerd: its own socket, root and state; runc's state under
# our state (--runc-root); IO fifos under our scratch directory; cgroups under a parent
# named after the run (/NS_PREFIX-ctrd/NAME). containerd runs in a mount namespace of its
# own (a slave of the host's): its shims and the containers' rootfs mounts live there and
# vanish with it, whatever happens to the test. The only files made outside the scratch
# directory are the shims' sockets, which containerd 1.6 always puts in /run/containerd/s
# (named by a hash of our socket path, so they never collide with a system containerd's);
# they go with the shims, and /run/containerd too when the test created it.
#
# Good to know: `ctr run` adds the label io.containerd.image.config.stop-signal to every
# container (so a watcher sees it among the labels); a container's task pid is in the
# host's pid namespace and /proc/PID/net is its network namespace's view.
#
# Needs root, containerd, runc, ctr, the CNI plugins (Debian: /usr/lib/cni),
# busybox-static, iptables, jq, util-linux's nsenter and unshare.

CTRD_NODE=node
CTRD_NS=palisade
CTRD_BRIDGE=cni-pal0
CTRD_SUBNET_PREFIX=10.99.7
CTRD_GW=$CTRD_SUBNET_PREFIX.1
CTRD_IMAGE=localhost/palisade-test/busybox:1
CTRD_IMAGE_DIGEST=""
CTRD_SOCK=""
CTRD_DIR=""
CTRD_DAEMON_PID=""
CTRD_CGROUP=""
CTRD_EXEC_N=0
CTRD_RUN_DIR_EXISTED=1
# Snapshotter: native copies the 2 MB layer per container, and works on any file
# system (overlayfs on an overlayfs root, as in some CI containers, does not).
CTRD_SNAPSHOTTER=${CTRD_SNAPSHOTTER:-native}
declare -A CTRD_IP=() CTRD_PID=() CTRD_NETNS=()

# ctrd_cni_path: the directory of the CNI plugins (Debian: /usr/lib/cni; upstream:
# /opt/cni/bin). CTRD_CNI_PATH overrides.
ctrd_cni_path() {
    local d
    for d in ${CTRD_CNI_PATH:-} /usr/lib/cni /opt/cni/bin; do
        if [ -x "$d/bridge" ] && [ -x "$d/static" ]; then
            printf '%s' "$d"
            return 0
        fi
    done
    echo "containerd-lib: no CNI bridge and static plugins (install containernetworking-plugins)" >&2
    return 1
}

ctrd_node() {
    [ -n "$NS_PREFIX" ] || netns_init || return 1
    ns_create "$CTRD_NODE" || return 1
    trap 'ctrd_cleanup; cleanup' EXIT
    trap 'ctrd_cleanup; cleanup; exit 130' INT
    trap 'ctrd_cleanup; cleanup; exit 143' TERM
    CTRD_DIR="$(ns_tmp)/ctrd"
    mkdir -p "$CTRD_DIR"/{root,state,runc,fifo,cni,image}
    CTRD_CGROUP="/$NS_PREFIX-ctrd"
}

ctrd_ctr() {
    timeout "${CTRD_CTR_TIMEOUT:-20}" ctr -a "$CTRD_SOCK" -n "$CTRD_NS" "$@"
}

ctrd_start() {
    local t i
    t=$(ns_tmp)
    [ -n "$CTRD_DIR" ] || ctrd_node || return 1
    CTRD_SOCK="$t/containerd.sock"
    # containerd 1.6's config (version 2). Plugins a test needs none of are disabled: CRI
    # (we are no kubelet; it would also start a CNI conf watcher and a stream server),
    # the snapshotters other than native and overlayfs, and "opt" (which would create
    # /opt/containerd on the host). The v1 runtime stays: 1.6's tasks service will not
    # load without it. The services the tests use are required, so a containerd that
    # cannot serve them fails at start rather than at the first `ctr run`.
    cat >"$CTRD_DIR/config.toml" <<TOML
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
required_plugins = [
  "io.containerd.grpc.v1.containers",
  "io.containerd.grpc.v1.events",
  "io.containerd.grpc.v1.images",
  "io.containerd.grpc.v1.tasks",
  "io.containerd.snapshotter.v1.$CTRD_SNAPSHOTTER",
]

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$CTRD_SOCK.ttrpc"

[debug]
  level = "${CTRD_LOG_LEVEL:-warn}"

[metrics]
  address = ""
TOML
    # The shims' sockets go to /run/containerd/s whatever the config says: note whether
    # /run/containerd was there, so cleanup removes only what this test created.
    [ -d /run/containerd ] || CTRD_RUN_DIR_EXISTED=0
    # nsenter --net, not `ip netns exec`: the latter remounts /sys, which hides
    # /sys/fs/cgroup from runc. unshare --mount: containerd, its shims and the
    # containers' rootfs mounts get a mount namespace of their own (a slave of the
    # host's), so no mount outlives the test.
    nsenter --net="/var/run/netns/$(ns_name "$CTRD_NODE")" \
        unshare --mount --propagation slave \
        containerd --config "$CTRD_DIR/config.toml" >"$t/containerd.log" 2>&1 &
    CTRD_DAEMON_PID=$!
    NS_PIDS+=("$CTRD_DAEMON_PID")
    for ((i = 0; i < 200; i++)); do
        if timeout 2 ctr -a "$CTRD_SOCK" version >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$CTRD_DAEMON_PID" 2>/dev/null; then
            echo "containerd-lib: containerd exited at start:" >&2
            tail -n 20 "$t/containerd.log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "containerd-lib: containerd did not answer on $CTRD_SOCK in 10 s" >&2
    return 1
}

# ctrd_blob DIR FILE: moves FILE into DIR/blobs/sha256/<digest>; prints
# "sha256:<digest> <size>".
ctrd_blob() {
    local dir=$1 file=$2 sum size
    sum=$(sha256sum "$file" | cut -d' ' -f1)
    size=$(stat -c %s "$file")
    mv "$file" "$dir/blobs/sha256/$sum"
    printf 'sha256:%s %s' "$sum" "$size"
}

# ctrd_arch: the OCI architecture of this machine (dpkg's names are Go's for the
# architectures Debian and Go share).
ctrd_arch() {
    case "$(uname -m)" in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        *) dpkg --print-architecture ;;
    esac
}

ctrd_image() {
    local d=$CTRD_DIR/image rootfs layout applet layer cfg man arch
    local layer_d layer_n cfg_d cfg_n man_d man_n
    rootfs=$d/rootfs
    layout=$d/layout
    rm -rf "$rootfs" "$layout"
    mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,www} "$layout/blobs/sha256"
    # Debian's busybox package (dynamic) and busybox-static both install /bin/busybox;
    # only the static one runs in a rootfs without a libc.
    if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
        echo "containerd-lib: /bin/busybox is missing or not static (install busybox-static)" >&2
        return 1
    fi
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    echo "palisade test image" >"$rootfs/www/index.html"
    chmod 755 "$rootfs" "$rootfs"/{bin,etc,proc,sys,dev,www} "$rootfs/bin/busybox"
    chmod 1777 "$rootfs/tmp"
    chmod 644 "$rootfs"/etc/* "$rootfs/www/index.html"
    # An uncompressed layer (its digest is then also its diff_id), reproducible: sorted,
    # owned by root, every time stamp 0, ustar (no pax headers with access times).
    layer=$d/layer.tar
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar \
        -C "$rootfs" -cf "$layer" . || return 1
    read -r layer_d layer_n <<<"$(ctrd_blob "$layout" "$layer")"
    arch=$(ctrd_arch)
    cfg=$d/config.json
    printf '{"created":"1970-01-01T00:00:00Z","architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"tests/live/containerd-lib.sh: busybox-static"}]}' \
        "$arch" "$layer_d" >"$cfg"
    read -r cfg_d cfg_n <<<"$(ctrd_blob "$layout" "$cfg")"
    man=$d/manifest.json
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
        "$cfg_d" "$cfg_n" "$layer_d" "$layer_n" >"$man"
    read -r man_d man_n <<<"$(ctrd_blob "$layout" "$man")"
    # io.containerd.image.name gives `ctr images import` the whole reference;
    # org.opencontainers.image.ref.name is the OCI tag, for other readers of the layout.
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$man_d" "$man_n" "$arch" "$CTRD_IMAGE" "${CTRD_IMAGE##*:}" >"$layout/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$layout" \
        -cf "$d/image.tar" oci-layout index.json blobs || return 1
    ctrd_ctr images import --snapshotter "$CTRD_SNAPSHOTTER" "$d/image.tar" >"$d/import.log" 2>&1 ||
        { cat "$d/import.log" >&2; return 1; }
    # REF TYPE DIGEST SIZE PLATFORMS LABELS
    CTRD_IMAGE_DIGEST=$(ctrd_ctr images ls | awk -v ref="$CTRD_IMAGE" '$1 == ref { print $3 }')
    if [ "$CTRD_IMAGE_DIGEST" != "$man_d" ]; then
        echo "containerd-lib: ctr images ls shows '$CTRD_IMAGE_DIGEST' for $CTRD_IMAGE, expected $man_d:" >&2
        ctrd_ctr images ls >&2
        return 1
    fi
}

ctrd_steer() {
    local ns
    ns=$(ns_name "$CTRD_NODE")
    # br_netfilter hands bridged frames to iptables (FORWARD, with -i/-o the bridge and
    # -m physdev naming the ports), so containers on one bridge are judged like routed
    # pods. Since Linux 5.3 the bridge-nf-call-* switches are per network namespace (and
    # start at 1 in a new one); set them in the node namespace only. A kernel that builds
    # br_netfilter as a module needs it loaded first (kmod's modprobe).
    if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
        modprobe br_netfilter 2>/dev/null ||
            { echo "containerd-lib: br_netfilter is not available (modprobe br_netfilter)" >&2; return 1; }
    fi
    ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 \
        net.bridge.bridge-nf-call-ip6tables=1 || return 1
    [ "$(ip netns exec "$ns" cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1 ] || return 1
    # The operator's steering script, as on a node, for the bridged frames only: the
    # node's own traffic to a container (OUTPUT) is not queued, so a test can always
    # reach a container from the node (to wait for its server, say).
    ip netns exec "$ns" bash "$ROOT/deploy/nfqueue-rules.sh" add --queues 0 \
        --match "-m physdev --physdev-is-bridged" >/dev/null
}

ctrd_queued() {
    ip netns exec "$(ns_name "$CTRD_NODE")" iptables -w -L PALISADE -v -x -n |
        awk '/NFQUEUE/ { print $1; exit }'
}

# ctrd_cni_conf IP: the network configuration for one container, on stdin of the plugin.
ctrd_cni_conf() {
    cat <<JSON
{
  "cniVersion": "1.0.0",
  "name": "palisade-test",
  "type": "bridge",
  "bridge": "$CTRD_BRIDGE",
  "isGateway": true,
  "ipMasq": false,
  "hairpinMode": false,
  "ipam": {
    "type": "static",
    "addresses": [{"address": "$1/24", "gateway": "$CTRD_GW"}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "$CTRD_GW"}]
  }
}
JSON
}

# ctrd_cni ADD|DEL NAME IP: the bridge plugin called by hand, as a runtime would, inside
# the node namespace (so the bridge and the host ends of the veths live there).
ctrd_cni() {
    local cmd=$1 name=$2 ip=$3 plugins
    plugins=$(ctrd_cni_path) || return 1
    ctrd_cni_conf "$ip" | ip netns exec "$(ns_name "$CTRD_NODE")" env \
        CNI_COMMAND="$cmd" CNI_CONTAINERID="$NS_PREFIX-$name" \
        CNI_NETNS="/var/run/netns/$(ns_name "c-$name")" CNI_IFNAME=eth0 CNI_PATH="$plugins" \
        "$plugins/bridge"
}

ctrd_run() {
    local name=$1 ip=$2 netns out veth pid i
    shift 2
    local labels=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        labels+=(--label "$1")
        shift
    done
    [ $# -gt 0 ] && shift
    [ $# -gt 0 ] || set -- sleep 3600
    ns_create "c-$name" || return 1
    netns="/var/run/netns/$(ns_name "c-$name")"
    out=$CTRD_DIR/cni/$name.json
    if ! ctrd_cni ADD "$name" "$ip" >"$out"; then
        echo "containerd-lib: CNI ADD for $name failed:" >&2
        cat "$out" >&2
        return 1
    fi
    if [ "${NS_GSO:-0}" != 1 ]; then
        # As tests/netns/lib.sh's ns_veth does: MSS-sized segments, as on a real wire.
        veth=$(jq -r '.interfaces[] | select((.sandbox // "") == "" and .name != "'"$CTRD_BRIDGE"'") | .name' "$out")
        [ -n "$veth" ] && ip -n "$(ns_name "$CTRD_NODE")" link set "$veth" gso_max_segs 1
        ip -n "$(ns_name "c-$name")" link set eth0 gso_max_segs 1
    fi
    # IP may have been another container's a moment ago: the node and the other
    # containers would keep sending to the old MAC until their entries go stale and are
    # probed again (seconds, and TCP's SYN backoff on top). Forget that address at once,
    # as a gratuitous ARP accepted everywhere would.
    local other
    ip -n "$(ns_name "$CTRD_NODE")" neigh flush to "$ip" >/dev/null 2>&1
    for other in "${!CTRD_NETNS[@]}"; do
        ip netns exec "$(ns_name "c-$other")" ip neigh flush to "$ip" >/dev/null 2>&1
    done
    ctrd_ctr run -d --snapshotter "$CTRD_SNAPSHOTTER" --runc-root "$CTRD_DIR/runc" \
        --cgroup "$CTRD_CGROUP/$name" --fifo-dir "$CTRD_DIR/fifo" \
        --log-uri "file://$(ns_tmp)/ctr-$name.log" --pid-file "$CTRD_DIR/$name.pid" \
        --with-ns "network:$netns" "${labels[@]}" \
        "$CTRD_IMAGE" "$name" "$@" </dev/null >"$CTRD_DIR/run-$name.out" 2>&1 ||
        { cat "$CTRD_DIR/run-$name.out" >&2; return 1; }
    pid=""
    for ((i = 0; i < 100; i++)); do
        pid=$(cat "$CTRD_DIR/$name.pid" 2>/dev/null)
        [ -n "$pid" ] && break
        sleep 0.05
    done
    [ -n "$pid" ] || { echo "containerd-lib: no pid for $name's task" >&2; return 1; }
    CTRD_IP[$name]=$ip
    CTRD_PID[$name]=$pid
    CTRD_NETNS[$name]=$netns
}

ctrd_stop() {
    local name=$1 i
    ctrd_ctr task kill -s SIGKILL "$name" >/dev/null 2>&1
    for ((i = 0; i < 100; i++)); do
        ctrd_ctr task delete "$name" >/dev/null 2>&1 && break
        sleep 0.05
    done
    ctrd_ctr task delete -f "$name" >/dev/null 2>&1
    ctrd_ctr containers delete "$name" >/dev/null 2>&1
    if ctrd_ctr containers info "$name" >/dev/null 2>&1; then
        echo "containerd-lib: container $name is still there" >&2
        return 1
    fi
    ctrd_cni DEL "$name" "${CTRD_IP[$name]}" >/dev/null || return 1
    ip netns del "$(ns_name "c-$name")" || return 1
    unset "CTRD_IP[$name]" "CTRD_PID[$name]" "CTRD_NETNS[$name]"
}

ctrd_exec() {
    local name=$1
    shift
    CTRD_EXEC_N=$((CTRD_EXEC_N + 1))
    ctrd_ctr task exec --exec-id "x$CTRD_EXEC_N" --fifo-dir "$CTRD_DIR/fifo" "$name" "$@" </dev/null
}

# busybox wget's own -T segfaults in Debian 12's busybox-static (1.35.0-4+deb12u1, on
# the host too): the timeout applet bounds it instead.
ctrd_get() {
    ctrd_exec "$1" timeout "${3:-3}" wget -q -O- "$2"
}

ctrd_wait_http() {
    local name=$1 url=$2 secs=${3:-5} end
    end=$((SECONDS + secs))
    while [ "$SECONDS" -le "$end" ]; do
        ctrd_get "$name" "$url" 1 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "containerd-lib: $url did not answer $name in ${secs}s" >&2
    return 1
}

ctrd_cleanup() {
    local -
    set +eu
    local c i pid d
    if [ -n "$CTRD_SOCK" ] && [ -n "$CTRD_DAEMON_PID" ] && kill -0 "$CTRD_DAEMON_PID" 2>/dev/null; then
        for c in $(CTRD_CTR_TIMEOUT=5 ctrd_ctr containers ls -q 2>/dev/null); do
            CTRD_CTR_TIMEOUT=5 ctrd_ctr task kill -s SIGKILL "$c" >/dev/null 2>&1
        done
        for c in $(CTRD_CTR_TIMEOUT=5 ctrd_ctr containers ls -q 2>/dev/null); do
            CTRD_CTR_TIMEOUT=5 ctrd_ctr task delete -f "$c" >/dev/null 2>&1
            CTRD_CTR_TIMEOUT=5 ctrd_ctr containers delete "$c" >/dev/null 2>&1
        done
        kill -TERM "$CTRD_DAEMON_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$CTRD_DAEMON_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$CTRD_DAEMON_PID" 2>/dev/null
        wait "$CTRD_DAEMON_PID" 2>/dev/null
    fi
    # Shims outlive containerd by design; ours are the ones started with our socket.
    if [ -n "$CTRD_SOCK" ]; then
        for pid in $(pgrep -f -- "-address $CTRD_SOCK( |\$)"); do
            kill -KILL "$pid" 2>/dev/null
        done
    fi
    # runc removes a container's cgroup on delete; the parent is ours to remove (and the
    # leaves too, when a task was killed without its delete).
    if [ -n "$CTRD_CGROUP" ]; then
        for d in /sys/fs/cgroup"$CTRD_CGROUP" /sys/fs/cgroup/*"$CTRD_CGROUP"; do
            [ -d "$d" ] || continue
            for ((i = 0; i < 20; i++)); do
                find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
                [ -d "$d" ] || break
                sleep 0.05
            done
        done
    fi
    if [ "$CTRD_RUN_DIR_EXISTED" = 0 ]; then
        rmdir /run/containerd/s /run/containerd 2>/dev/null
    fi
    CTRD_DAEMON_PID=""
    return 0
}
