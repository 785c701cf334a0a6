# nix-build -A <class>.netbuild builds one class (see README.md).
# The class expressions are written by `netbuild generate` into .netbuild/nix/.
{ nixpkgs ? null, system ? builtins.currentSystem }:
let generated = ./.netbuild/nix/default.nix;
in
if builtins.pathExists generated then import generated { inherit nixpkgs system; }
else throw "netbuild: run `npx netbuild generate` first (it writes .netbuild/nix/)"
