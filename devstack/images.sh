#!/usr/bin/env bash
# Container images of the local cluster, built on this machine without a Docker engine and without
# pulling anything from an image registry. podman (its own configuration and storage, apart from the
# machine's) builds them; each is saved once as a docker-archive named after a key of its content, so
# a warm run only hashes files; `import` loads the archives into the cluster's containerd.
#
# Usage: images.sh build [NAME...]  build every image (or NAME and its bases) whose archive is missing
#        images.sh tags             `export VAR=ref` lines for the deployed images (see IMAGES below)
#        images.sh ref NAME         the reference of one image: localhost/NAME:<version>-g<rev>
#        images.sh content-ref NAME the reference by content: localhost/NAME:key-<16 hex>
#        images.sh archive NAME     the path of the cached archive of one image
#        images.sh import ADDRESS   the deployed images into the containerd at socket ADDRESS
#                                   (namespace k8s.io); an image whose reference is there already is skipped
#
# References: localhost/NAME:<pyproject version>-g<git short revision>, with -dirty-<8 hex of the
# content key> appended while the work tree has uncommitted changes (so an edited image never
# hides behind the tag of the commit). Archives and podman know an image by its content reference
# localhost/NAME:key-<16 hex>; `import` tags that in containerd with the reference above, so a new
# commit that changes nothing in an image costs one `ctr images tag`.
#
# Images, in build order (an image whose Dockerfile does not exist or lacks ARG BASE_IMAGE is skipped,
# with a log line, and so is every image built FROM it):
#   lakehouse-base   mmdebstrap: Debian bookworm minbase + python3, python3-venv, ca-certificates, tini
#   pause            devstack/images/pause/Dockerfile: our pause.c, static, alone in the image
#   lakehouse        Dockerfile (repository root): the operator and the API
#   lakehouse-spark  spark/Dockerfile (repository root), FROM lakehouse-base
#   spark-operator   devstack/images/spark-operator/Dockerfile (its folder), FROM lakehouse-spark
#   coredns          devstack/images/coredns/Dockerfile (its folder), FROM lakehouse-base
#
# What a Dockerfile built here may assume (and must do):
#   - Its base image comes as the build arg BASE_IMAGE, declared before the first FROM (an image
#     whose Dockerfile lacks `ARG BASE_IMAGE` is skipped); the value is localhost/<base>:key-<hash>.
#     Builds run with --pull=never and no registry is configured: every stage that is used starts
#     FROM that arg, an earlier stage or scratch (podman skips stages nothing uses, so a Docker-only
#     stage, e.g. one in a Maven image, may stay).
#   - lakehouse-base is Debian bookworm minbase with python3 (3.11, /usr/bin/python3; pip only inside
#     a venv: python3 -m venv brings it), ca-certificates, tini (/usr/bin/tini) and passwd (useradd).
#     apt sources: bookworm, bookworm-updates, bookworm-security (run apt-get update first; the lists
#     are not kept). dpkg installs no man pages, docs or translations; /usr/share/man/man1 exists
#     (openjdk's postinst needs it). PATH is the usual one, LANG=C.UTF-8, merged /usr.
#   - RUN has the host's network (the package registries). This machine's network intercepts TLS:
#     the host's CA bundle is mounted read-only at /run/devstack-ca.crt and the build args
#     SSL_CERT_FILE, PIP_CERT and REQUESTS_CA_BUNDLE point at it. A stage that downloads over HTTPS
#     declares the ones its tools read (uv: SSL_CERT_FILE; pip: PIP_CERT); they are unset for Docker
#     users and never stored in the image's config (ARG, not ENV). apt uses plain HTTP.
#   - Named build contexts, each replacing a stage of the same name (`FROM scratch AS <name>`, or a
#     stage that builds the same files for Docker users):
#       pause            bin: a folder with `pause` (compiled here from pause.c)
#       lakehouse-spark  jars: the Spark job's jars of devstack/spark.sh install (*.jar at the top)
#       spark-operator   bin: the folder of `devstack/spark-operator.sh path` (holds `spark-operator`)
#       coredns          bin: the folder of `devstack/coredns.sh path` (holds `coredns`)
#   - The ignore file is <Dockerfile>.dockerignore (passed with --ignorefile) or the context's
#     .dockerignore.
#   - The content key covers: the Dockerfile, its ignore file, every context path a COPY/ADD without
#     --from names (contents and modes; literal paths or globs; no ${VAR} in sources, no heredocs,
#     no JSON form), the named contexts
#     (pause.c and the compiler; the jars' install stamp, names and sizes; the binaries' sha256),
#     the base image's key and RECIPE below. Anything else a build reads (a package index, a URL)
#     is not in the key: pin it in a file that is.
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"
# A failure inside $(...) (a missing input while hashing) must stop the script, not yield a wrong key.
shopt -s inherit_errexit

IMAGES_DIR="$LAKEHOUSE_CACHE_DIR/images"    # <name>-<key>.tar, staged named contexts, build logs
PODMAN_DIR="$LAKEHOUSE_CACHE_DIR/podman"    # podman's configuration, storage (graph) and run state
# Bumped when the way images are built changes while none of their inputs does: rebuilds everything.
RECIPE=1
IMAGES=(lakehouse-base pause lakehouse lakehouse-spark spark-operator coredns)
DEPLOYED=(pause lakehouse lakehouse-spark spark-operator coredns)

DEBIAN_SUITE=bookworm
DEBIAN_SOURCES=(
  "deb http://deb.debian.org/debian $DEBIAN_SUITE main"
  "deb http://deb.debian.org/debian $DEBIAN_SUITE-updates main"
  "deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main"
)
BASE_PACKAGES=(python3 python3-venv ca-certificates tini passwd)
# Small: merged /usr by symlinks (the usrmerge package would bring perl, 50 MB), no recommends, no
# docs/man pages/translations (downstream apt installs inherit the dpkg excludes), no apt lists
# (mmdebstrap's own clean-up).
MMDEBSTRAP_OPTS=(
  --variant=minbase --format=tar --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")"
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='APT::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --customize-hook='mkdir -p "$1/usr/share/man/man1"'
  --customize-hook='rm -f "$1"/var/log/*.log "$1"/var/log/apt/* "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old'
)
BASE_CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'CMD ["/bin/bash"]'
)

PAUSE_CFLAGS=(-static -Os -s -Wall -Wextra -Werror)
# The host's trust store, for RUN steps behind a TLS-intercepting network (see the header).
BUILD_CA=/etc/ssl/certs/ca-certificates.crt
BUILD_CA_TARGET=/run/devstack-ca.crt

# image_spec NAME: sets DOCKERFILE, CONTEXT, BASE (the image it is built FROM; empty: none) and VAR.
image_spec() {
  case "$1" in
    lakehouse-base)  DOCKERFILE=""; BASE=""; VAR="" ;;
    pause)           DOCKERFILE="$DEVSTACK_DIR/images/pause/Dockerfile"; BASE=""; VAR=PAUSE_IMAGE ;;
    lakehouse)       DOCKERFILE="$REPO_ROOT/Dockerfile"; BASE=lakehouse-base; VAR=LAKEHOUSE_IMAGE ;;
    lakehouse-spark) DOCKERFILE="$REPO_ROOT/spark/Dockerfile"; BASE=lakehouse-base; VAR=LAKEHOUSE_SPARK_IMAGE ;;
    spark-operator)  DOCKERFILE="$DEVSTACK_DIR/images/spark-operator/Dockerfile"; BASE=lakehouse-spark; VAR=SPARK_OPERATOR_IMAGE ;;
    coredns)         DOCKERFILE="$DEVSTACK_DIR/images/coredns/Dockerfile"; BASE=lakehouse-base; VAR=COREDNS_IMAGE ;;
    *)               die "unknown image '$1' (images: ${IMAGES[*]})" ;;
  esac
  case "$1" in
    lakehouse-base) CONTEXT="" ;;
    lakehouse|lakehouse-spark) CONTEXT="$REPO_ROOT" ;;
    pause|spark-operator|coredns) CONTEXT="${DOCKERFILE%/*}" ;;
  esac
}

# available NAME: NAME and every image below it can be built here: the Dockerfile exists and, when
# the image has a base, takes it as ARG BASE_IMAGE (a Dockerfile not yet written for this builder
# would pull from a registry). Else SKIPPED says why.
available() {
  local name="$1"
  image_spec "$name"
  if [[ -n "$DOCKERFILE" && ! -f "$DOCKERFILE" ]]; then SKIPPED="${DOCKERFILE#"$REPO_ROOT"/} does not exist"; return 1; fi
  if [[ -n "$BASE" ]] && ! grep -q '^ARG BASE_IMAGE\b' "$DOCKERFILE"; then
    SKIPPED="${DOCKERFILE#"$REPO_ROOT"/} has no ARG BASE_IMAGE yet"; return 1
  fi
  [[ -z "$BASE" ]] || available "$BASE"
}

# --- podman, apart from the machine's own configuration and storage ---

podman() {
  CONTAINERS_CONF="$PODMAN_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$PODMAN_DIR/registries.conf" TMPDIR="$PODMAN_DIR/tmp" command podman "$@"
}

# overlay on the graph's file system if the kernel allows it here (root, not nested), else vfs.
# The first choice sticks: podman refuses a storage created by another driver.
storage_driver() {
  local graph="$PODMAN_DIR/graph" probe
  if [[ -d "$graph/overlay" ]]; then echo overlay; return; fi
  if [[ -d "$graph/vfs" ]]; then echo vfs; return; fi
  probe="$(mktemp -d "$PODMAN_DIR/overlay-probe.XXXXXX")"
  mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"; echo overlay
  else
    echo vfs
  fi
  rm -rf "$probe"
}

# runc (crun refuses this machine's hybrid cgroups v1), cgroupfs (no systemd), ulimits below the
# machine's hard limits (podman's defaults exceed them), the host's network (RUN reaches the package
# registries; nothing listens), no registries to resolve short names against.
write_podman_config() {
  mkdir -p "$PODMAN_DIR/graph" "$PODMAN_DIR/run" "$PODMAN_DIR/tmp" "$PODMAN_DIR/networks"
  cat > "$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "host"
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$PODMAN_DIR/run/libpod"
image_copy_tmp_dir = "$PODMAN_DIR/tmp"

[network]
network_config_dir = "$PODMAN_DIR/networks"
EOF
  cat > "$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "$(storage_driver)"
graphroot = "$PODMAN_DIR/graph"
runroot = "$PODMAN_DIR/run/storage"
EOF
  cat > "$PODMAN_DIR/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "enforcing"
EOF
}

# --- content keys and references ---

# Keys are memoized in files, not variables, so the subshells of $(...) share them.
KEY_MEMO="$(mktemp -d)"
trap 'rm -rf "$KEY_MEMO"' EXIT

# copy_sources DOCKERFILE: the context paths its COPY/ADD instructions read (not --from a stage or a
# named context), one per line.
copy_sources() {
  awk '
    /^[[:space:]]*#/ && pending == "" { next }
    {
      if (sub(/\\[[:space:]]*$/, "")) { pending = pending $0 " "; next }
      $0 = pending $0; pending = ""
      op = toupper($1)
      if (op != "COPY" && op != "ADD") next
      n = 0; from = 0
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^--from=/) from = 1
        else if ($i !~ /^--/) args[++n] = $i
      }
      if (!from) for (i = 1; i < n; i++) print args[i]
    }' "$1"
}

# ignore_file: the ignore file podman reads for $DOCKERFILE in $CONTEXT (may not exist).
ignore_file() {
  if [[ -f "$DOCKERFILE.dockerignore" ]]; then echo "$DOCKERFILE.dockerignore"; else echo "$CONTEXT/.dockerignore"; fi
}

# prune_args: find(1) arguments skipping what the ignore file excludes. Handles the forms our ignore
# files use: `name` (at the context's top), `**/name` and `*.ext` anywhere.
prune_args() {
  local pattern ignore; ignore="$(ignore_file)"
  PRUNE=(-false)
  [[ -f "$ignore" ]] || return 0
  while read -r pattern; do
    pattern="${pattern%/}"
    [[ -z "$pattern" || "$pattern" == \#* ]] && continue
    if [[ "$pattern" == '**/'* ]]; then PRUNE+=(-o -name "${pattern#'**/'}")
    elif [[ "$pattern" == *'*'* && "$pattern" != */* ]]; then PRUNE+=(-o -name "$pattern")
    else PRUNE+=(-o -path "./$pattern")
    fi
  done < "$ignore"
}

# context_digests: "sha256  path" and "mode path" of every context file the Dockerfile copies.
context_digests() {
  local source path sources=() paths=()
  mapfile -t sources < <(copy_sources "$DOCKERFILE")
  prune_args
  (
    cd "$CONTEXT"
    shopt -s nullglob dotglob
    for source in "${sources[@]}"; do
      [[ "$source" != *'$'* ]] || die "$DOCKERFILE: COPY source '$source' uses a variable (not keyed)"
      # Unquoted on purpose: a glob source expands like podman expands it.
      for path in ./${source#/}; do
        [[ -e "$path" ]] || die "$DOCKERFILE: COPY source '$source' is not in $CONTEXT"
        path="${path%/}"
        paths+=("${path%/.}")   # `COPY . dst`: the context itself, so that ./<ignored> paths match
      done
    done
    ((${#paths[@]})) || exit 0
    find "${paths[@]}" \( "${PRUNE[@]}" \) -prune -o -type f -print0 | LC_ALL=C sort -zu | xargs -0r sha256sum
    find "${paths[@]}" \( "${PRUNE[@]}" \) -prune -o -type f -printf '%m %p\n' | LC_ALL=C sort -u
  )
}

# jar_listing DIR: the jars' install stamp (spark.sh: a key of the pom and the pinned versions) and
# their names and sizes. Released Maven artifacts never change, and hashing 400 MB of jars would cost
# every warm run seconds.
jar_listing() {
  [[ -f "$1/.installed" ]] || die "jar_listing: no install stamp in '$1'"
  cat "$1/.installed"
  (cd "$1" && find . -type f -printf '%P %s\n' | LC_ALL=C sort)
}

# extra_inputs NAME: what the image is made from outside its build context (its named contexts).
# (Values go through variables: a failing $(...) used as an argument would go unnoticed.)
extra_inputs() {
  local path compiler
  case "$1" in
    pause)
      compiler="$(gcc -dumpfullversion)"
      echo "gcc $compiler ${PAUSE_CFLAGS[*]}"; sha256sum < "$DEVSTACK_DIR/images/pause/pause.c" ;;
    lakehouse-spark) path="$(spark_jars_dir)"; jar_listing "$path" ;;
    spark-operator|coredns) path="$(binary_path "$1")"; sha256sum < "$path" ;;
  esac
}

# key_of NAME: sha256 of everything the image is made from (see the header), computed once per run.
key_of() {
  local name="$1" memo="$KEY_MEMO/$1"
  [[ -s "$memo" ]] || compute_key "$name" > "$memo"
  cat "$memo"
}

compute_key() {
  local name="$1" base_key="" key
  image_spec "$name"
  [[ -z "$BASE" ]] || base_key="$BASE $(key_of "$BASE")"
  image_spec "$name"
  key="$({
    echo "recipe $RECIPE image $name"
    if [[ -z "$DOCKERFILE" ]]; then
      printf '%s\n' "$DEBIAN_SUITE" "${DEBIAN_SOURCES[@]}" "${MMDEBSTRAP_OPTS[@]}" "${BASE_CHANGES[@]}"
    else
      echo "dockerfile"; cat "$DOCKERFILE"
      echo "ignore"; if [[ -f "$(ignore_file)" ]]; then cat "$(ignore_file)"; fi
      echo "context"; context_digests
      echo "named contexts"; extra_inputs "$name"
      echo "base $base_key"
    fi
  } | sha256sum | cut -d' ' -f1)"
  [[ "$key" =~ ^[0-9a-f]{64}$ ]] || die "could not compute the content key of $name"
  echo "$key"
}

content_ref() { local key; key="$(key_of "$1")"; echo "localhost/$1:key-${key:0:16}"; }
archive_path() { local key; key="$(key_of "$1")"; echo "$IMAGES_DIR/$1-$key.tar"; }

project_version() { sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/pyproject.toml" | head -n1; }
git_revision() { git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || true; }
work_tree_dirty() { [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null)" ]]; }

# image_ref NAME: the reference the cluster uses (see the header).
image_ref() {
  local tag key
  local revision; revision="$(git_revision)"
  # Outside a git checkout (or when git refuses it) the content names the image, never a constant tag.
  if [[ -z "$revision" ]]; then key="$(key_of "$1")"; echo "localhost/$1:$(project_version)-content-${key:0:8}"; return; fi
  tag="$(project_version)-g$revision"
  if work_tree_dirty; then key="$(key_of "$1")"; tag+="-dirty-${key:0:8}"; fi
  echo "localhost/$1:$tag"
}

# --- inputs produced by other scripts ---

spark_jars_dir() {
  local dir="$LAKEHOUSE_CACHE_DIR/spark-jars-$ICEBERG_VERSION"
  [[ -f "$dir/.installed" ]] || die "Spark jars missing: run devstack/spark.sh install (images.sh build does)"
  echo "$dir"
}

# binary_path NAME: the binary a devstack/NAME.sh script built (its `path` sub-command).
binary_path() {
  local script="$DEVSTACK_DIR/$1.sh" path
  [[ -x "$script" ]] || die "$script is missing: the $1 image needs its binary"
  path="$("$script" path)"
  [[ -x "$path" ]] || die "$script path gave '$path', not an executable"
  echo "$path"
}

# install_inputs NAME: the other scripts fetch/build what the image copies (no-ops when cached).
install_inputs() {
  case "$1" in
    lakehouse-spark) "$DEVSTACK_DIR/spark.sh" install ;;
    spark-operator|coredns) "$DEVSTACK_DIR/$1.sh" install ;;
  esac
}

# stage_named_contexts NAME: prepares the named build contexts; sets NAMED (podman arguments).
stage_named_contexts() {
  local name="$1" dir path
  image_spec "$name"
  NAMED=()
  case "$name" in
    pause)
      dir="$IMAGES_DIR/context/pause"
      rm -rf "$dir" && mkdir -p "$dir"
      gcc "${PAUSE_CFLAGS[@]}" -o "$dir/pause" "$DEVSTACK_DIR/images/pause/pause.c"
      NAMED=(--build-context "bin=$dir") ;;
    lakehouse-spark)
      path="$(spark_jars_dir)"
      NAMED=(--build-context "jars=$path") ;;
    spark-operator|coredns)
      # The script's output folder holds the binary (and its install stamp, which no COPY reads).
      path="$(binary_path "$name")"
      NAMED=(--build-context "bin=${path%/*}") ;;
  esac
}

# --- build ---

# build_log NAME CMD...: runs CMD with its output appended to NAME's build log (the output is long);
# on failure, its tail goes to stderr.
build_log() {
  local name="$1" log_file="$IMAGES_DIR/logs/$1.log"; shift
  if ! "$@" >> "$log_file" 2>&1; then
    tail -n 40 "$log_file" >&2
    die "building $name failed (log: $log_file)"
  fi
}

# The base: a Debian root file system from the Debian mirror (no registry image to start FROM).
build_base() {
  local ref="$1" rootfs="$IMAGES_DIR/lakehouse-base.rootfs.tar" change changes=()
  for change in "${BASE_CHANGES[@]}"; do changes+=(--change "$change"); done
  build_log lakehouse-base mmdebstrap "${MMDEBSTRAP_OPTS[@]}" "$DEBIAN_SUITE" "$rootfs" "${DEBIAN_SOURCES[@]}"
  build_log lakehouse-base podman import "${changes[@]}" --message "lakehouse-base: mmdebstrap $DEBIAN_SUITE" \
    "$rootfs" "$ref"
  rm -f "$rootfs"
}

build_dockerfile() {
  local name="$1" ref="$2" ignore base_ref args=()
  image_spec "$name"
  ignore="$(ignore_file)"
  if [[ -f "$ignore" ]]; then args+=(--ignorefile "$ignore"); fi
  if [[ -n "$BASE" ]]; then base_ref="$(content_ref "$BASE")"; args+=(--build-arg "BASE_IMAGE=$base_ref"); fi
  if [[ -f "$BUILD_CA" ]]; then
    args+=(--volume "$BUILD_CA:$BUILD_CA_TARGET:ro")
    local var
    for var in SSL_CERT_FILE PIP_CERT REQUESTS_CA_BUNDLE; do args+=(--build-arg "$var=$BUILD_CA_TARGET"); done
  fi
  stage_named_contexts "$name"
  image_spec "$name"
  args+=(--label "dev.lakehouse.devstack.key=$(key_of "$name")")
  # --cgroup-parent: the build's containers in a cgroup of the stack's own, which `make down` removes.
  build_log "$name" podman build --pull=never --network=host --layers --cgroup-parent=/lakehouse/image-builds \
    -f "$DOCKERFILE" -t "$ref" \
    "${args[@]}" "${NAMED[@]}" "$CONTEXT"
}

# ensure_in_podman NAME: the image is in podman's storage (a child is built FROM it).
ensure_in_podman() {
  local ref archive
  ref="$(content_ref "$1")"
  archive="$(archive_path "$1")"
  podman image exists "$ref" && return 0
  log "loading $1 into podman from $archive"
  podman load -q -i "$archive" >/dev/null
}

# remove_stale NAME: older archives of NAME, and its older images in podman's storage.
remove_stale() {
  local name="$1" current file ref
  current="$(archive_path "$name")"
  for file in "$IMAGES_DIR/$name"-*.tar; do
    [[ "$file" != "$current" && "${file##*/}" =~ ^$name-[0-9a-f]{64}\.tar$ ]] || continue
    log "removing stale archive ${file##*/}"
    rm -f "$file"
  done
  current="$(content_ref "$name")"
  while read -r ref; do
    [[ "$ref" == "localhost/$name:key-"* && "$ref" != "$current" ]] || continue
    # An image other builds' cached layers descend from cannot go; then its name goes.
    podman rmi "$ref" >/dev/null 2>&1 || podman untag "$ref" >/dev/null 2>&1 || true
  done < <(podman images --format '{{.Repository}}:{{.Tag}}' "localhost/$name")
}

# collect_garbage: what replaced images and interrupted builds leave in podman's storage: stage images
# no tagged image descends from, and working containers of builds (none runs: we hold the lock).
# The layers of the current images stay, the cache of the next rebuild.
collect_garbage() {
  local id
  for id in $(podman ps -a --external -q); do podman rm -f "$id" >/dev/null; done
  podman image prune -f >/dev/null
}

build_image() {
  local name="$1" started=$SECONDS archive ref
  install_inputs "$name"
  archive="$(archive_path "$name")"
  if [[ -f "$archive" ]]; then log "$name: cached ($(du -h "$archive" | cut -f1) ${archive##*/})"; return 0; fi
  ref="$(content_ref "$name")"
  log "$name: building $ref (log: $IMAGES_DIR/logs/$name.log)"
  mkdir -p "$IMAGES_DIR/logs" && : > "$IMAGES_DIR/logs/$name.log"
  image_spec "$name"
  [[ -z "$BASE" ]] || ensure_in_podman "$BASE"
  if [[ "$name" == lakehouse-base ]]; then build_base "$ref"; else build_dockerfile "$name" "$ref"; fi
  build_log "$name" podman save --format docker-archive -o "$archive.tmp" "$ref"
  mv "$archive.tmp" "$archive"
  remove_stale "$name"
  BUILT+=("$name")
  log "$name: built in $((SECONDS - started))s ($(du -h "$archive" | cut -f1))"
}

# Builds and imports never run twice at once (make up and make test may overlap).
lock() {
  mkdir -p "$IMAGES_DIR"
  exec 9> "$IMAGES_DIR/.lock"
  flock -n 9 && return 0
  log "waiting for another images.sh to finish"
  flock 9
}

# cmd_build [NAME...]: every image, or the named ones and the images they are built FROM.
cmd_build() {
  local name started=$SECONDS wanted=("$@")
  ((${#wanted[@]})) || wanted=("${IMAGES[@]}")
  BUILT=()
  lock
  write_podman_config
  for name in $(with_bases "${wanted[@]}"); do
    if available "$name"; then build_image "$name"
    else log "$name: skipped ($SKIPPED)"
    fi
  done
  ((${#BUILT[@]} == 0)) || collect_garbage
  log "images ready in $((SECONDS - started))s"
}

# with_bases NAME...: the names and the images they are built FROM, in build order.
with_bases() {
  local name wanted=" " needed=" "
  for name in "$@"; do image_spec "$name"; wanted+="$name "; done
  for name in "${IMAGES[@]}"; do
    [[ "$wanted" == *" $name "* ]] || continue
    while [[ -n "$name" ]]; do needed+="$name "; image_spec "$name"; name="$BASE"; done
  done
  for name in "${IMAGES[@]}"; do [[ "$needed" != *" $name "* ]] || echo "$name"; done
}

# --- what the cluster reads ---

cmd_tags() {
  local name var ref
  for name in "${DEPLOYED[@]}"; do
    image_spec "$name"; var="$VAR"
    if available "$name"; then
      ref="$(image_ref "$name")"
      printf 'export %s=%q\n' "$var" "$ref"
    else
      echo "# $var: not built here ($SKIPPED)"
    fi
  done
}

# must_be_available NAME: dies when NAME is skipped by build.
must_be_available() {
  available "$1" || die "$1 is not built here ($SKIPPED)"
}

cmd_ref() {
  must_be_available "$1"
  image_ref "$1"
}

cmd_archive() {
  must_be_available "$1"
  local archive; archive="$(archive_path "$1")"
  [[ -f "$archive" ]] || die "$1 is not built: run devstack/images.sh build"
  echo "$archive"
}

# import_image ADDRESS NAME PRESENT: NAME's reference into containerd; by a tag when the same content
# is there already (under its content reference), else from the archive.
import_image() {
  local address="$1" name="$2" present="$3" ref cref archive
  ref="$(image_ref "$name")"
  cref="$(content_ref "$name")"
  if grep -qxF "$ref" <<<"$present"; then log "$ref: already in containerd"; return 0; fi
  if grep -qxF "$cref" <<<"$present"; then
    ctr --address "$address" -n k8s.io images tag --force "$cref" "$ref" >/dev/null
    log "$ref: tagged (same content as ${cref##*:})"
    return 0
  fi
  archive="$(archive_path "$name")"
  [[ -f "$archive" ]] || die "$name is not built: run devstack/images.sh build"
  log "importing $name ($(du -h "$archive" | cut -f1))"
  ctr --address "$address" -n k8s.io images import "$archive" >/dev/null
  ctr --address "$address" -n k8s.io images tag --force "$cref" "$ref" >/dev/null
  log "$ref: imported"
}

# forget_stale ADDRESS NAME PRESENT: drops NAME's other references (older commits and contents), so
# containerd's garbage collector frees their layers; it runs before any pod starts.
forget_stale() {
  local address="$1" name="$2" present="$3" keep1 keep2 stale
  keep1="$(image_ref "$name")"
  keep2="$(content_ref "$name")"
  stale="$(grep -E "^localhost/$name:" <<<"$present" | grep -vxF -e "$keep1" -e "$keep2" || true)"
  [[ -z "$stale" ]] && return 0
  # shellcheck disable=SC2086 # one reference per word
  ctr --address "$address" -n k8s.io images rm $stale >/dev/null
}

# forget_orphan_ids ADDRESS: the CRI names each image it sees also by its ID (`sha256:...`, same manifest).
# Those names outlive the tags removed above and would keep every old image's layers on disk: the ones
# whose manifest no remaining tag names go too.
forget_orphan_ids() {
  local address="$1" orphans
  orphans="$(ctr --address "$address" -n k8s.io images ls | awk '
    NR == 1 { next }
    $1 ~ /^sha256:/ { ids[$1] = $3; next }
    { named[$3] = 1 }
    END { for (id in ids) if (!(ids[id] in named)) print id }')"
  [[ -z "$orphans" ]] && return 0
  # shellcheck disable=SC2086 # one reference per word
  ctr --address "$address" -n k8s.io images rm $orphans >/dev/null
}

cmd_import() {
  local address="$1" name present
  [[ -S "$address" ]] || die "no containerd socket at $address"
  lock
  present="$(ctr --address "$address" -n k8s.io images ls -q)"
  for name in "${DEPLOYED[@]}"; do
    available "$name" || { log "$name: skipped ($SKIPPED)"; continue; }
    import_image "$address" "$name" "$present"
    forget_stale "$address" "$name" "$present"
  done
  forget_orphan_ids "$address"
}

case "${1:-}" in
  build)   shift; cmd_build "$@" ;;
  tags)    cmd_tags ;;
  ref)     [[ $# == 2 ]] || die "usage: $0 ref NAME"; cmd_ref "$2" ;;
  # The reference by content alone: stable across commits (containerd's sandbox image must not move).
  content-ref) [[ $# == 2 ]] || die "usage: $0 content-ref NAME"; must_be_available "$2"; content_ref "$2" ;;
  archive) [[ $# == 2 ]] || die "usage: $0 archive NAME"; cmd_archive "$2" ;;
  import)  [[ $# == 2 ]] || die "usage: $0 import ADDRESS"; cmd_import "$2" ;;
  *)       echo "usage: $0 build [NAME...]|tags|ref NAME|content-ref NAME|archive NAME|import ADDRESS" >&2; exit 2 ;;
esac
