# Every tool netbuild and its tests use, from the pinned nixpkgs (npins/sources.json).
# Entering it takes a Nix that can evaluate that nixpkgs (current nixpkgs: Nix >= 2.18, its
# lib/minver.nix), so it cannot bring a newer Nix to an older one such as Debian 12's nix-bin (2.8):
# install one first (https://nixos.org/download, or Lix: https://lix.systems).
{
  sources ? import ./npins,
  pkgs ? import sources.nixpkgs { },
}:
pkgs.mkShell {
  packages = with pkgs; [
    # package.json asks for node >= 20; nixpkgs' default nodejs is the current LTS.
    nodejs
    nix
    npins
    qemu
    openssh
    rsync
    cpio
    gzip
  ];

  # Not on PATH: busybox's applets would shadow coreutils in the shell. scripts/demo-artifacts
  # and the tests pack it into throwaway initrds, which needs a static build.
  NETBUILD_BUSYBOX = "${pkgs.pkgsStatic.busybox}/bin/busybox";
  # For UEFI boots in QEMU, next to the BIOS iPXE ROMs that QEMU already carries.
  NETBUILD_OVMF = "${pkgs.OVMF.fd}/FV/OVMF.fd";
  NETBUILD_IPXE = "${pkgs.ipxe}";

  shellHook = ''
    export NETBUILD_NIXPKGS=${sources.nixpkgs}
    echo "netbuild shell: node $(node --version), nixpkgs $NETBUILD_NIXPKGS"
  '';
}
