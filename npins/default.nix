# Loads sources.json (npins format 7) without npins' generated loader: `npins` only edits the
# JSON. `import ./npins` is { <pin> = <store path>; ... }; a pin is downloaded (and its hash
# checked) only when its value is used, so listing the pins fetches nothing.
let
  data = builtins.fromJSON (builtins.readFile ./sources.json);
  version = data.version or null;

  # In format 7 these carry the url of a tarball and the NAR hash of its unpacked contents,
  # which is exactly what builtins.fetchTarball checks.
  tarballTypes = [ "Git" "GitRelease" "Channel" "Tarball" ];

  fail = name: why: throw "npins/default.nix: pin '${name}' ${why}";

  fetch = name: pin:
    let
      type = pin.type or "(missing)";
      # Tarball pins served with the lockable-tarball protocol record an immutable url too.
      url = if (pin.locked_url or null) != null then pin.locked_url else pin.url or null;
    in
    if !(builtins.elem type tarballTypes) then
      fail name "has type ${type}; this loader fetches only ${builtins.concatStringsSep ", " tarballTypes}"
    else if pin.submodules or false then
      fail name "needs git submodules, which the tarball lacks; use npins' own loader for it"
    else if url == null then
      fail name "has no tarball url (a plain git repository?); pin it from GitHub or GitLab"
    else if (pin.hash or null) == null then
      fail name "has no hash; run `npins update ${name}`"
    else
      # Nix parses the SRI form ("sha256-…") here as well as base32 and hex.
      builtins.fetchTarball { inherit url; sha256 = pin.hash; };
in
if version == 7 then
  builtins.mapAttrs fetch data.pins
else
  throw "npins/default.nix: sources.json has format version ${builtins.toJSON version}, but this loader reads only version 7; run `npins upgrade` or update npins/default.nix"
