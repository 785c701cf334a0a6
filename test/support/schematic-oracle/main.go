// A test oracle, not part of netbuild: reads Image Factory schematics (one JSON value per line on
// stdin), decodes each the way the factory does (yaml.v3, unknown fields refused) and prints the
// bytes `yaml.Marshal` gives for it, as a JSON string per line ("error: ..." when it fails).
// The struct mirrors the factory's published schematic data model (field order and yaml tags are
// what the ID depends on); it is written here from that format description.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

type bootloader int

var bootloaderNames = []string{"none", "dual-boot", "sd-boot", "grub"}

func (b bootloader) MarshalText() ([]byte, error) { return []byte(bootloaderNames[b]), nil }

func (b *bootloader) UnmarshalText(text []byte) error {
	for i, name := range bootloaderNames {
		if strings.EqualFold(name, string(text)) {
			*b = bootloader(i)
			return nil
		}
	}
	return fmt.Errorf("unknown bootloader %q", text)
}

type schematic struct {
	Owner         string        `yaml:"owner,omitempty"`
	Overlay       overlay       `yaml:"overlay,omitempty"`
	Customization customization `yaml:"customization"`
}

type customization struct {
	EmbeddedMachineConfiguration string           `yaml:"embeddedMachineConfiguration,omitempty"`
	ExtraKernelArgs              []string         `yaml:"extraKernelArgs,omitempty"`
	Meta                         []metaValue      `yaml:"meta,omitempty"`
	SystemExtensions             systemExtensions `yaml:"systemExtensions,omitempty"`
	Bootloader                   bootloader       `yaml:"bootloader,omitempty"`
	SecureBoot                   secureBoot       `yaml:"secureboot,omitempty"`
	DiskImage                    diskImage        `yaml:"diskImage,omitempty"`
}

type metaValue struct {
	Key   uint8  `yaml:"key"`
	Value string `yaml:"value"`
}

type systemExtensions struct {
	OfficialExtensions []string `yaml:"officialExtensions,omitempty"`
}

type overlay struct {
	Image   string         `yaml:"image"`
	Name    string         `yaml:"name"`
	Options map[string]any `yaml:"options,omitempty"`
}

type secureBoot struct {
	EnrollKeys                   string `yaml:"enrollKeys,omitempty"`
	IncludeWellKnownCertificates bool   `yaml:"includeWellKnownCertificates,omitempty"`
}

type diskImage struct {
	SectorSize uint `yaml:"sectorSize,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		dec := yaml.NewDecoder(bytes.NewReader(in.Bytes()))
		dec.KnownFields(true)
		var s schematic
		if err := dec.Decode(&s); err != nil {
			out.Encode("error: " + err.Error())
			continue
		}
		data, err := yaml.Marshal(&s)
		if err != nil {
			out.Encode("error: " + err.Error())
			continue
		}
		out.Encode(string(data))
	}
}
