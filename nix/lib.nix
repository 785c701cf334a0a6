# netbuild's Nix library. `netbuild generate` copies it (with the NixOS module) next to the
# generated class expressions in <root>/.netbuild/nix/, so that folder needs nothing else.
#
# Every class evaluates to { netbuild, kernel, initrd, kernelParams, kind } and
# `nix-build -A <class>.netbuild` builds it.
{ nixpkgs ? null, system ? builtins.currentSystem }:
let
  # Built into Nix (no nixpkgs): a fixed-output download whose hash Nix checks.
  fetch = { url, hash, name }: import <nix/fetchurl.nix> { inherit url hash name; };

  file = { path, name }: builtins.path { inherit path name; };

  # A class's result: a directory whose `manifest.nix` is the class's JSON manifest (kernel,
  # initrd, kernel parameters). builtin:buildenv is the one builder that every Nix has, even with
  # the sandbox on and neither nixpkgs nor /bin/sh available (Debian's Nix, offline machines); the
  # file name is fixed by that builder. The artifacts are inputs, so Nix builds them first.
  bundle = { name, kind, kernel, initrd, kernelParams, cmdlineFile ? null, inputs ? [ ] }:
    let
      manifest = builtins.toJSON {
        class = name;
        inherit kind kernelParams;
        kernel = "${kernel}";
        initrd = "${initrd}";
        # A file of kernel parameters that go before kernelParams (the Image Factory's command line).
        cmdlineFile = if cmdlineFile == null then null else "${cmdlineFile}";
      };
    in
    {
      inherit kind kernel initrd kernelParams;
      netbuild = derivation {
        name = "netbuild-${name}";
        system = "builtin";
        builder = "builtin:buildenv";
        manifest = builtins.toFile "netbuild-${name}.json" (builtins.unsafeDiscardStringContext manifest);
        derivations = [ ];
        netbuildInputs = [ kernel initrd ] ++ (if cmdlineFile == null then [ ] else [ cmdlineFile ]) ++ inputs;
        preferLocalBuild = true;
        allowSubstitutes = false;
      };
    };

  requireNixpkgs = class:
    if nixpkgs == null then
      throw "netbuild: class ${class} is a NixOS class and needs nixpkgs: pin it with npins (npins/sources.json) or pass --argstr nixpkgs /path/to/nixpkgs"
    else nixpkgs;
in
{
  inherit fetch file bundle;

  prebuilt = { name, kernel, initrd, kernelParams }:
    bundle { inherit name kernel initrd kernelParams; kind = "prebuilt"; };

  # Kernel, initramfs and kernel command line from the Talos Image Factory, each pinned by hash.
  # The command line is the factory's own for this schematic, version and platform (Talos's
  # defaults plus the schematic's extraKernelArgs); netbuild puts it before the class's parameters.
  talos = { name, factory, schematicId, version, arch, platform, kernelHash, initramfsHash, cmdlineHash, kernelParams }:
    let
      base = "${factory}/image/${schematicId}/${version}";
      # The schematic in the name: two classes on one release with different schematics are different downloads.
      tag = "talos-${builtins.substring 0 8 schematicId}-${version}";
      pinned = hash: what:
        if hash == null then throw "netbuild: class ${name} is not pinned: run `netbuild pin --class ${name}` to set talos.hashes.${what}" else hash;
    in bundle {
      inherit name kernelParams;
      kind = "talos";
      kernel = fetch { url = "${base}/kernel-${arch}"; hash = pinned kernelHash "kernel"; name = "${tag}-${arch}-kernel"; };
      initrd = fetch { url = "${base}/initramfs-${arch}.xz"; hash = pinned initramfsHash "initramfs"; name = "${tag}-${arch}-initramfs.xz"; };
      cmdlineFile = fetch { url = "${base}/cmdline-${platform}-${arch}"; hash = pinned cmdlineHash "cmdline"; name = "${tag}-${platform}-${arch}-cmdline"; };
    };

  # A NixOS system built for netboot by nixpkgs' own netboot module: its kernel, its initrd
  # (which carries the Nix store as squashfs) and `init=` of its top-level.
  nixos = { name, modules, kernelParams, flagPrefix, authorizedKeys ? [ ], hostAuthorizedKeys ? { }, hostsWithoutKeys ? [ ], system ? builtins.currentSystem }:
    let
      np = requireNixpkgs name;
      eval = import (np + "/nixos/lib/eval-config.nix") {
        inherit system;
        modules = modules ++ [
          (np + "/nixos/modules/installer/netboot/netboot.nix")
          ./netbuild-module.nix
          {
            netbuild.flagPrefix = flagPrefix;
            netbuild.className = name;
            netbuild.ssh.hostsWithoutKeys = hostsWithoutKeys;
            netbuild.ssh.authorizedKeys = authorizedKeys;
            netbuild.ssh.hostAuthorizedKeys = hostAuthorizedKeys;
          }
        ];
      };
      cfg = eval.config;
      build = cfg.system.build;
    in
    bundle {
      inherit name;
      kind = "nixos";
      kernel = "${build.kernel}/${cfg.system.boot.loader.kernelFile}";
      initrd = "${build.netbootRamdisk}/initrd";
      kernelParams = [ "init=${build.toplevel}/init" ] ++ cfg.boot.kernelParams ++ kernelParams;
      inputs = [ build.toplevel ];
    } // { config = cfg; toplevel = build.toplevel; };
}
