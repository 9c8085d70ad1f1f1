#!/usr/bin/env bash
# Builds the local images (go run ./hack/imagebuild; cached under $CACHE/images, only the
# sandbox-server image is rebuilt when its source changed) and, when the cluster's containerd is up,
# imports them into its k8s.io namespace. An image whose ID (config digest) containerd already has
# under its name is skipped: imported images carry the label podsandbox.image-id.
#   images.sh            (make images) build, then import when the cluster runs
#   images.sh build      build only; "<ref> <tarball> <id> <size>" lines go to $RUN/images.list
#   images.sh import     import what $RUN/images.list lists
# Env: IMAGES_ONLY=busybox,python limits the build to those images (names in internal/imagebuild).
. "$(dirname "$0")/lib.sh"
LIST=$RUN/images.list

build() {
  (cd "$ROOT" && go run ./hack/imagebuild -dir "$CACHE/images" ${IMAGES_ONLY:+-only "$IMAGES_ONLY"}) > "$LIST.tmp"
  mv "$LIST.tmp" "$LIST"
}

import() {
  [ -f "$LIST" ] || die "no $LIST: run images.sh build first"
  ctr_ version >/dev/null 2>&1 || die "containerd is not running ($SOCK); run make cluster-up"
  local have ref tar id size n=0
  have=$(ctr_ images ls 2>/dev/null)
  while read -r ref tar id size; do
    if printf '%s\n' "$have" | awk -v r="$ref" -v l="podsandbox.image-id=$id" '$1==r && index($0,l){f=1} END{exit !f}'; then
      continue
    fi
    log "importing $ref ($(( size / 1000000 )) MB)"
    ctr_ images import "$tar" >/dev/null || die "ctr images import $tar failed"
    ctr_ images label "$ref" "podsandbox.image-id=$id" >/dev/null
    n=$((n + 1))
  done < "$LIST"
  [ "$n" = 0 ] && log "images: all $(wc -l < "$LIST") already in containerd" || true
}

case "${1:-all}" in
  build) build ;;
  import) import ;;
  all)
    if ! ctr_ version >/dev/null 2>&1; then
      LIST=$(mktemp); trap 'rm -f "$LIST"' EXIT
      build
      log "the cluster is not running: images built, not imported"
      exit 0
    fi
    lock # not while a cluster-up or cluster-down runs
    build
    import
    ;;
  *) die "usage: images.sh [build|import]" ;;
esac
