#!/usr/bin/env bash
# provision-disks.service: formats this class's disks ONCE when the kernel command line asks for
# it, and mounts them on every boot. Run as `bash provision-disks.sh` (the unit's whole script).
#
# The one-shot model. netbuild puts two tokens on the command line of a host whose inventory
# says `provision: { disks: true }`:
#     <prefix>.provision_disks=true  <prefix>.provision_id=<id>
# The disks are formatted only when the flag is exactly `true` AND <id> differs from the id that
# the last *successful* provision recorded on the disks themselves, in
#     $NETBUILD_PERSISTENT_DIR/.netbuild/provision-id
# (on the provisioned storage, so a re-format destroys it). The id is recorded only after the
# format script and the mount script both succeeded and the folder is really on the devices. So:
#   - a reboot with the same id (the flag was never removed) mounts and does not wipe;
#   - a new id formats again, once;
#   - a failed format records nothing, and the next boot tries again;
#   - disks whose last id cannot be read (the mount script fails, or does not put the folder on
#     the devices) are formatted only when they are blank: a mount that fails once (a broken
#     mount script in a new image, a slow device) must not wipe provisioned disks on every host
#     whose flag stays armed. Disks of another install need <prefix>.provision_force=true
#     (`provision: { …, force: true }` in the inventory);
#   - a restart of the unit in the same boot never formats (marker in $NETBUILD_RUN_DIR, a tmpfs);
#   - the flag without a valid id formats nothing, loudly.
# Nothing else, in particular not a missing volume group or filesystem, ever leads to formatting.
# When armed, the script first runs the mount script (allowed to fail) and reads the recorded id;
# to format, it unmounts again, newest first, what the mount script mounted on the devices.
#
# Before any wipe it refuses (exit 1, naming the device and why, formatting nothing) when a listed
# device, one of its partitions or holders is mounted (anywhere in the mount table) or used as
# swap, or belongs to an LVM volume group that cannot be deactivated or that also lives on
# other devices. Volume groups wholly on the devices are deactivated and removed (vgremove,
# pvremove) before the format script runs, so LVM auto-activation cannot race the wipe.
#
# Command-line parsing is netbuild-cmdline.sh's: whole tokens, the last occurrence wins, and
# `=truex`, `=TRUE`, `x<prefix>.provision_disks=true` or a quoted token never count.
#
# Environment (the NixOS module sets these; tests set them too):
#   NETBUILD_FLAG_PREFIX     prefix of the keys, e.g. `homelab` (required)
#   NETBUILD_DEVICES         space-separated block devices the format script uses, e.g. /dev/nvme0n1
#   NETBUILD_FORMAT          the class's format script (run with bash; DESTROYS DATA)
#   NETBUILD_MOUNT           the class's mount script (run with bash; must be idempotent)
#   NETBUILD_PERSISTENT_DIR  a folder on the provisioned storage once mounted, e.g. /srv
#   NETBUILD_RUN_DIR         where the per-boot marker goes          (default /run/netbuild)
#   NETBUILD_CMDLINE         stands in for /proc/cmdline             (default /proc/cmdline)
#   NETBUILD_CMDLINE_LIB     the parser library                      (default: next to this script)
# Tools: bash, coreutils, util-linux (lsblk, findmnt, umount, wipefs), awk; lvm2 and udevadm when present.
# Exit status: 0 mounted (and provisioned, when asked); 1 refused, or the persistent folder is not
# on the devices, or the id could not be recorded; 2 misconfigured (no prefix or mount script);
# otherwise the status of the format or mount script that failed.
set -euo pipefail

# shellcheck source=netbuild-cmdline.sh
source "${NETBUILD_CMDLINE_LIB:-$(dirname "$0")/netbuild-cmdline.sh}"

say() { printf 'provision-disks: %s\n' "$*"; }
warn() { printf 'provision-disks: %s\n' "$*" >&2; }

# Refuses to format: every reason given, then exit 1. Nothing has been wiped at this point.
refuse() {
  local reason
  for reason in "$@"; do warn "REFUSING TO FORMAT: $reason"; done
  warn "nothing was formatted and no provision id was recorded; fix the above and reboot (a restart of this unit in the same boot only mounts)"
  exit 1
}

prefix=${NETBUILD_FLAG_PREFIX:-}
if [[ ! "$prefix" =~ ^[a-z][a-z0-9_]{0,31}$ ]]; then
  warn "NETBUILD_FLAG_PREFIX='$prefix' is not a flag prefix ([a-z][a-z0-9_]{0,31}): not formatting, not mounting"
  exit 2
fi
if [[ -z "${NETBUILD_MOUNT:-}" ]]; then
  warn "NETBUILD_MOUNT (the mount script) is not set: not formatting, not mounting"
  exit 2
fi
flag="$prefix.provision_disks"
idkey="$prefix.provision_id"
run_dir=${NETBUILD_RUN_DIR:-/run/netbuild}
marker="$run_dir/provision-disks.ran"

# Runs the mount script and exits with its status.
mount_and_exit() {
  local status=0
  bash "$NETBUILD_MOUNT" || status=$?
  if [[ $status -ne 0 ]]; then
    warn "the mount script failed (status $status)"
    exit "$status"
  fi
  say "mounted"
  exit 0
}

# 1. A restart in the same boot never formats (the marker lives on /run, a tmpfs).
if [[ -e "$marker" ]]; then
  say "already ran in this boot ($marker exists): not formatting, whatever the kernel command line says; only mounting"
  mount_and_exit
fi
mkdir -p "$run_dir"
: > "$marker"

# 2. Armed only with the flag exactly `true` and a valid provision id.
if ! value=$(netbuild_cmdline_value "$flag") || [[ "$value" != true ]]; then
  say "$flag=true is not on the kernel command line; not formatting"
  mount_and_exit
fi
id_ok=0 id_present=0
if id=$(netbuild_cmdline_value "$idkey"); then
  id_present=1
  [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] && id_ok=1
fi
if [[ $id_ok -ne 1 ]]; then
  if [[ $id_present -eq 0 ]]; then why="there is no $idkey= on the kernel command line"; else why="$idkey=$(printf '%q' "$id") is not a valid provision id (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)"; fi
  warn "!!! $flag=true is on the kernel command line, but $why"
  warn "!!! NOT FORMATTING ANYTHING: a provision needs an id, so that a reboot with the flag still on does not wipe again"
  mount_and_exit
fi

devices_str=${NETBUILD_DEVICES:-}
read -r -a devices <<< "$devices_str" || true
persist=${NETBUILD_PERSISTENT_DIR:-}
id_file="$persist/.netbuild/provision-id"
[[ ${#devices[@]} -gt 0 ]] || refuse "NETBUILD_DEVICES lists no devices: there is nothing to check before a wipe"
[[ "$persist" == /* ]] || refuse "NETBUILD_PERSISTENT_DIR='$persist' is not an absolute path: there would be nowhere to record the provision id"
[[ -n "${NETBUILD_FORMAT:-}" ]] || refuse "NETBUILD_FORMAT (the format script) is not set"

settle() {
  if command -v udevadm > /dev/null; then
    udevadm settle --timeout=60 || warn "udevadm settle did not finish; going on"
  fi
}

# "major:minor" of a block device node, or status 1.
devnum() {
  local hex maj min
  [[ -b "$1" ]] || return 1
  hex=$(stat -L -c '%t %T' "$1") || return 1
  read -r maj min <<< "$hex"
  printf '%d:%d\n' "0x$maj" "0x$min"
}

# Every block device on the listed devices: each device, its partitions and their holders
# (device-mapper, md, ...), as lsblk shows the tree. node[MAJ:MIN]=path, owner[MAJ:MIN]=device.
declare -A node=() owner=()
# A listed partition stands for its whole disk: a format script that zaps the disk reaches the
# other partitions too, so those are checked as well.
scan_devices() {
  local dev top listing path mm
  node=() owner=()
  for dev in "${devices[@]}"; do
    [[ -b "$dev" ]] || refuse "$dev is not a block device (is it missing?)"
    # The disk at the top of its ancestors (lsblk -s lists a device, then what it sits on).
    top=$(lsblk -nrpso PATH,TYPE "$dev" | awk '$2 == "disk" || $2 == "loop" { p = $1 } END { print p }') || top=""
    listing=$(lsblk -nrpo PATH,MAJ:MIN "${top:-$dev}") || refuse "lsblk cannot list ${top:-$dev}"
    while read -r path mm; do
      [[ -n "$mm" ]] || continue
      node[$mm]=$path
      owner[$mm]=${top:-$dev}
    done <<< "$listing"
  done
}

# "path" or "path (on device)", for messages.
describe() {
  local mm=$1
  if [[ "${node[$mm]}" == "${owner[$mm]}" ]]; then printf '%s' "${node[$mm]}"; else printf '%s (on %s)' "${node[$mm]}" "${owner[$mm]}"; fi
}

# Whether the filesystem holding folder $1 is on one of the devices (by the mount's major:minor,
# or by its source device for filesystems such as btrfs that report an anonymous one).
on_devices() {
  local dir=$1 line mm src smm
  [[ -d "$dir" ]] || return 1
  line=$(findmnt -nro MAJ:MIN,SOURCE --target "$dir" 2> /dev/null | head -n 1) || return 1
  read -r mm src <<< "$line"
  [[ -n "${mm:-}" && -n "${node[$mm]+x}" ]] && return 0
  src=${src%%\[*}
  [[ "${src:-}" == /* ]] && smm=$(devnum "$src") && [[ -n "${node[$smm]+x}" ]] && return 0
  return 1
}

mount_ids() { cut -d ' ' -f 1 /proc/self/mountinfo; }

# Whether mountinfo fields $1 (major:minor) and $2 (source) are on the devices.
mount_on_devices() {
  local mm=$1 src smm
  [[ -n "${node[$mm]+x}" ]] && return 0
  src=$(printf '%b' "$2")
  [[ "$src" == /* ]] && smm=$(devnum "$src") && [[ -n "${node[$smm]+x}" ]]
}

# Unmounts, newest first, what the mount script mounted: the mounts whose id is not in $1 (the
# ids noted before it ran) and that are on the devices, or below such a mount. Mounts that other
# units made meanwhile elsewhere are left alone.
unmount_new() {
  local -A before=()
  local -a f mine=()
  local mid mp i src under
  for mid in $1; do before[$mid]=1; done
  while read -r -a f; do
    mid=${f[0]}
    [[ -n "${before[$mid]+x}" ]] && continue
    mp=$(printf '%b' "${f[4]}")
    src=""
    for ((i = 6; i < ${#f[@]}; i++)); do
      if [[ "${f[i]}" == - ]]; then src=${f[i + 2]:-}; break; fi
    done
    if mount_on_devices "${f[2]}" "$src"; then
      mine+=("$mp")
    else
      for under in "${mine[@]}"; do
        if [[ "$mp" == "$under"/* || "$under" == / ]]; then mine+=("$mp"); break; fi
      done
    fi
  done < /proc/self/mountinfo
  for ((i = ${#mine[@]} - 1; i >= 0; i--)); do
    say "unmounting ${mine[i]} (mounted by the mount script) before formatting"
    umount -- "${mine[i]}" || warn "cannot unmount ${mine[i]}"
  done
}

# Refuses unless nothing on the devices is mounted or used as swap.
check_unused() {
  local -a problems=()
  local -a f
  local mm i src smm mp file
  while read -r -a f; do
    mm=${f[2]}
    mp=$(printf '%b' "${f[4]}")
    src=""
    for ((i = 6; i < ${#f[@]}; i++)); do
      if [[ "${f[i]}" == - ]]; then src=${f[i + 2]:-}; break; fi
    done
    src=$(printf '%b' "$src")
    if [[ -n "${node[$mm]+x}" ]]; then
      problems+=("$(describe "$mm") is mounted at $mp")
    elif [[ "$src" == /* ]] && smm=$(devnum "$src") && [[ -n "${node[$smm]+x}" ]]; then
      problems+=("$(describe "$smm") is mounted at $mp")
    fi
  done < /proc/self/mountinfo
  if [[ -r /proc/swaps ]]; then
    while read -r file _; do
      file=$(printf '%b' "$file")
      if smm=$(devnum "$file") && [[ -n "${node[$smm]+x}" ]]; then
        problems+=("$(describe "$smm") is in use as swap")
      fi
    done < <(tail -n +2 /proc/swaps)
  fi
  [[ ${#problems[@]} -eq 0 ]] || refuse "${problems[@]}"
}

# LVM on the devices: volume groups are deactivated here and removed by remove_lvm, with their
# physical volumes' labels, so that LVM auto-activation cannot race the wipe. Refuses when a
# group also has physical volumes elsewhere (or missing ones), cannot be deactivated, or keeps a
# logical volume active, open or in an unknown state.
lvm_vgs=() lvm_pvs=()
check_lvm() {
  if ! command -v pvs > /dev/null; then
    say "lvm2 is not installed: no volume groups to check"
    return 0
  fi
  local listing pv vg mm attr lv
  local -a ours=() problems=()
  local -A vgs=() vg_pvs=()
  listing=$(pvs --noheadings --separator '|' -o pv_name,vg_name) || refuse "pvs failed: cannot tell whether LVM uses ${devices[*]}"
  while IFS='|' read -r pv vg; do
    pv=${pv#"${pv%%[![:space:]]*}"}
    [[ -n "$pv" ]] || continue
    vg=${vg//[[:space:]]/}
    if mm=$(devnum "$pv") && [[ -n "${node[$mm]+x}" ]]; then
      ours+=("$pv")
      [[ -n "$vg" ]] && vgs[$vg]=1
    fi
    [[ -n "$vg" ]] && vg_pvs[$vg]+="$pv "
  done <<< "$listing"
  [[ ${#ours[@]} -gt 0 ]] || return 0

  for vg in "${!vgs[@]}"; do
    for pv in ${vg_pvs[$vg]}; do
      if ! mm=$(devnum "$pv") || [[ -z "${node[$mm]+x}" ]]; then
        problems+=("volume group $vg also has physical volume $pv, which is not on ${devices[*]} (removing the group would break it)")
      fi
    done
  done
  [[ ${#problems[@]} -eq 0 ]] || refuse "${problems[@]}"

  for vg in "${!vgs[@]}"; do
    say "volume group $vg is on ${devices[*]}: deactivating it"
    vgchange --activate n "$vg" || problems+=("cannot deactivate volume group $vg (on ${vg_pvs[$vg]% })")
  done
  for vg in "${!vgs[@]}"; do
    listing=$(lvs --noheadings --separator '|' -o lv_name,lv_attr "$vg") || { problems+=("lvs cannot list the logical volumes of $vg"); continue; }
    while IFS='|' read -r lv attr; do
      lv=${lv//[[:space:]]/}
      attr=${attr//[[:space:]]/}
      [[ -n "$lv" ]] || continue
      # lv_attr: the 5th character is the state (a = active, - = not), the 6th whether the
      # device is open (o); X is "unknown" (e.g. no device-mapper to ask).
      if [[ "${attr:4:1}" != - || "${attr:5:1}" != - ]]; then
        problems+=("logical volume $vg/$lv on ${vg_pvs[$vg]% } is still active, open or in an unknown state (lv_attr $attr)")
      fi
    done <<< "$listing"
  done
  [[ ${#problems[@]} -eq 0 ]] || refuse "${problems[@]}"
  lvm_vgs=("${!vgs[@]}")
  lvm_pvs=("${ours[@]}")
}

# Removes what check_lvm found (the groups deactivated, their physical volumes' labels).
remove_lvm() {
  local vg
  [[ ${#lvm_pvs[@]} -gt 0 ]] || return 0
  for vg in "${lvm_vgs[@]}"; do
    say "removing volume group $vg"
    vgremove -ff -y "$vg" || refuse "vgremove of $vg failed"
  done
  say "removing LVM physical volume labels: ${lvm_pvs[*]}"
  pvremove -ff -y "${lvm_pvs[@]}" || refuse "pvremove of ${lvm_pvs[*]} failed"
}

# Records the id: a temp file beside the final one, synced, renamed over it.
record_id() {
  local dir="$persist/.netbuild" tmp
  mkdir -p "$dir" || return 1
  tmp=$(mktemp "$dir/.provision-id.XXXXXX") || return 1
  { printf '%s\n' "$id" > "$tmp" && sync "$tmp" && mv -fT "$tmp" "$id_file" && sync "$dir"; } || { rm -f "$tmp"; return 1; }
}

# Signatures (filesystems, partition tables, LVM, RAID, swap) on the devices and their
# partitions, one "path: type" per line; nothing for blank disks.
signatures() {
  local mm types
  for mm in "${!node[@]}"; do
    # What wipefs cannot read counts as data: blank means known to be blank.
    if ! types=$(wipefs --noheadings --output TYPE -- "${node[$mm]}" 2>&1); then types="unreadable (wipefs: ${types//$'\n'/ })"; fi
    types=$(printf '%s' "$types" | paste -sd ',' || true)
    [[ -n "$types" ]] && printf '%s: %s\n' "$(describe "$mm")" "$types"
  done
  return 0
}

force=0
if value=$(netbuild_cmdline_value "$prefix.provision_force") && [[ "$value" == true ]]; then force=1; fi

# 3. Armed: are the disks already provisioned with this id?
say "$flag=true $idkey=$id is on the kernel command line: checking whether ${devices[*]} already hold provision $id"
settle
scan_devices
mounts_before=$(mount_ids)
mount_status=0
bash "$NETBUILD_MOUNT" || mount_status=$?
# Again: the mount script may have made holders (LVM volumes, dm-crypt) whose mounts count too.
settle
scan_devices
recorded=""
# Whether the disks say which provision they hold: the id read there (whatever the mount script's
# status) is the one thing that lets provisioned disks be formatted again. With no id to read,
# only blank disks are formatted, or any with force (step 4).
readable=0
if on_devices "$persist" && [[ -f "$id_file" ]]; then
  IFS= read -r recorded < "$id_file" || true
  if [[ "$recorded" == "$id" ]]; then
    say "already provisioned with id $id: not formatting"
    if [[ $mount_status -ne 0 ]]; then
      warn "the mount script failed (status $mount_status)"
      exit "$mount_status"
    fi
    exit 0
  fi
  readable=1
  why="the disks were provisioned with id $(printf '%q' "$recorded")"
elif [[ $mount_status -ne 0 ]]; then
  why="the mount script failed (status $mount_status), so the id of the disks' last provision cannot be read"
elif ! on_devices "$persist"; then
  why="$persist is not on ${devices[*]} after mounting, so the id of the disks' last provision cannot be read"
else
  why="no provision id is recorded in $id_file (the disks were provisioned otherwise, or the id file is gone)"
fi
say "$why: provisioning with id $id"
unmount_new "$mounts_before"

# 4. Safety checks before any wipe.
settle
scan_devices
check_unused
check_lvm
# Disks whose last provision cannot be read are formatted only when they are blank: a mount that
# fails once (a broken mount script in a new image, a slow device) must not wipe provisioned
# disks on every host whose flag stays armed. Disks of another install need `force`.
if [[ $readable -eq 0 ]]; then
  found=$(signatures)
  if [[ -z "$found" ]]; then
    say "${devices[*]} hold no filesystem, partition table or other signature: blank disks"
  elif [[ $force -eq 1 ]]; then
    warn "!!! the disks hold data whose provision cannot be read, and $prefix.provision_force=true is on the kernel command line: formatting anyway. Found:"
    while IFS= read -r line; do warn "!!!   $line"; done <<< "$found"
    warn "!!! force stays armed: while it does, any boot that cannot read the id (a mount script that fails) formats again; drop it once this host is provisioned"
  else
    mapfile -t lines <<< "$found"
    refuse "the disks hold data (${lines[*]}) and $why: a provisioned disk that fails to mount once must not be wiped" \
      "if these disks hold nothing you need (another install), arm the wipe with force (\`netbuild provision HOST --force\`, which adds $prefix.provision_force=true), or erase them by hand (wipefs -a DEVICE), then reboot; otherwise fix the mount script"
  fi
fi
remove_lvm
settle

# 5. Format, then mount.
echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
echo "!!! provision-disks: $flag=true $idkey=$id is on the kernel command line"
echo "!!! provision-disks: WIPING AND FORMATTING DISKS NOW: ${devices[*]}"
echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
status=0
bash "$NETBUILD_FORMAT" || status=$?
if [[ $status -ne 0 ]]; then
  warn "the format script FAILED (status $status): provision id $id NOT recorded; the next boot with $idkey=$id tries again if the disks are blank, and otherwise leaves them alone unless $prefix.provision_force=true"
  exit "$status"
fi
say "format finished"
settle
bash "$NETBUILD_MOUNT" || status=$?
if [[ $status -ne 0 ]]; then
  warn "the mount script FAILED after formatting (status $status): provision id $id NOT recorded; fix the mount script (the next boot does not format these disks again unless $prefix.provision_force=true)"
  exit "$status"
fi

# 6. Record the id, on the devices only: anywhere else (a tmpfs, the root filesystem) it would
# not survive, or not be wiped by the next format, and every boot would format again.
scan_devices
if ! on_devices "$persist"; then
  where=$(findmnt -nro SOURCE,FSTYPE --target "$persist" 2> /dev/null | head -n 1 || true)
  warn "!!! $persist is not on ${devices[*]} after formatting and mounting (it is on: ${where:-nothing mounted}); provision id $id NOT recorded"
  warn "!!! fix the mount script or NETBUILD_PERSISTENT_DIR: until the id is recorded on the disks, no boot formats them again without $prefix.provision_force=true (their last provision cannot be read)"
  exit 1
fi
if ! record_id; then
  warn "cannot record provision id $id in $id_file: the next boot does not format these disks again unless $prefix.provision_force=true (their last provision cannot be read)"
  exit 1
fi
say "provisioned with id $id (recorded in $id_file)"
