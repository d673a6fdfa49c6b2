//! The fields a query can constrain or sort by: names, aliases, kinds of value, units.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of value a field holds, which decides the operators and values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A whole number: `num_gpus>=2`, `price<=1500`.
    Integer,
    /// A decimal number: `gpu_ram>=23.5`.
    Decimal,
    /// A `major.minor` version compared part by part: `cuda>=12.2` (12.10 is above 12.2).
    Version,
    /// `true` or `false`.
    Bool,
    /// Text compared word by word, ignoring case and punctuation: `gpu_name=RTX_4090`.
    Text,
    /// An ISO 3166-1 alpha-2 country code, any case: `location=de`.
    Country,
    /// A node id (base58 peer id): `provider=12D3KooW…`.
    Node,
}

impl FieldKind {
    /// Whether `< <= > >=` apply to this kind.
    pub fn is_ordered(self) -> bool {
        matches!(self, Self::Integer | Self::Decimal | Self::Version)
    }
}

/// A property of an offer (or of its provider) that a query can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The GPU model; `=` matches whole words of the name.
    GpuName,
    /// How many GPUs the offer has.
    NumGpus,
    /// VRAM per GPU in GiB.
    GpuRam,
    /// Price in QU per GPU-hour.
    Price,
    /// Price in QU per hour for all the offer's GPUs.
    TotalPrice,
    /// Highest CUDA version the driver supports.
    Cuda,
    /// CUDA compute capability.
    ComputeCap,
    /// Driver version; `=` matches whole dotted parts (`550` matches `550.54.15`).
    Driver,
    /// Country code of the provider.
    Location,
    /// Free-form region of the provider; unknown when the offer gives none.
    Region,
    /// Share of the provider's past rentals that ended well, 0 to 1; unknown for a new one.
    Reliability,
    /// Whether the GPUs are simulated (testnet).
    Simulated,
    /// CPU cores with the offer.
    CpuCores,
    /// RAM with the offer, in GiB.
    Ram,
    /// Disk with the offer, in GiB.
    Disk,
    /// The provider's node id.
    Provider,
    /// Longest rental accepted, in hours.
    MaxDuration,
    /// PCIe generation of the GPUs; unknown when the probe could not read it.
    Pcie,
    /// Whether the GPUs are linked by NVLink; unknown when the probe could not tell.
    Nvlink,
}

/// How a field is written and what it holds. `FIELDS[f as usize].field == f` for every `f`.
struct FieldInfo {
    field: Field,
    name: &'static str,
    aliases: &'static [&'static str],
    kind: FieldKind,
    sortable: bool,
    unit: &'static str,
    example: &'static str,
}

const fn info(
    field: Field,
    name: &'static str,
    aliases: &'static [&'static str],
    kind: FieldKind,
    sortable: bool,
    unit: &'static str,
    example: &'static str,
) -> FieldInfo {
    FieldInfo {
        field,
        name,
        aliases,
        kind,
        sortable,
        unit,
        example,
    }
}

use FieldKind::{Bool, Country, Decimal, Integer, Node, Text, Version};

// One row per field: field, name, aliases, kind, sortable, unit, example.
#[rustfmt::skip]
const FIELDS: [FieldInfo; 19] = [
    info(Field::GpuName, "gpu_name", &["gpu", "model"], Text, false, "", "gpu_name=RTX_4090"),
    info(Field::NumGpus, "num_gpus", &["gpu_count"], Integer, true, "", "num_gpus>=2"),
    info(Field::GpuRam, "gpu_ram", &["vram"], Decimal, true, " GiB", "gpu_ram>=24"),
    info(Field::Price, "price", &[], Integer, true, " QU", "price<=1500"),
    info(Field::TotalPrice, "total_price", &[], Integer, true, " QU", "total_price<=6000"),
    info(Field::Cuda, "cuda", &["cuda_version"], Version, true, "", "cuda>=12.2"),
    info(Field::ComputeCap, "compute_cap", &["compute_capability"], Version, true, "",
         "compute_cap>=8.9"),
    info(Field::Driver, "driver", &["driver_version"], Text, false, "", "driver=550"),
    info(Field::Location, "location", &["country"], Country, true, "", "location in [DE,FR]"),
    info(Field::Region, "region", &[], Text, false, "", "region=eu_central"),
    info(Field::Reliability, "reliability", &[], Decimal, true, "", "reliability>=0.95"),
    info(Field::Simulated, "simulated", &[], Bool, false, "", "simulated=false"),
    info(Field::CpuCores, "cpu_cores", &["cpus"], Integer, true, "", "cpu_cores>=16"),
    info(Field::Ram, "ram", &[], Decimal, true, " GiB", "ram>=64"),
    info(Field::Disk, "disk", &[], Decimal, true, " GiB", "disk>=200"),
    info(Field::Provider, "provider", &["node"], Node, false, "", "provider=12D3KooW…"),
    info(Field::MaxDuration, "max_duration", &[], Decimal, true, " h", "max_duration>=24"),
    info(Field::Pcie, "pcie", &["pcie_gen"], Integer, false, "", "pcie>=4"),
    info(Field::Nvlink, "nvlink", &[], Bool, false, "", "nvlink=true"),
];

// The table is indexed by the enum's discriminant; check the order at compile time.
const _: () = {
    let mut i = 0;
    while i < FIELDS.len() {
        assert!(
            FIELDS[i].field as usize == i,
            "FIELDS must be in the order of Field"
        );
        i += 1;
    }
};

/// Words that are not fields but set sorting and paging.
pub(crate) const CONTROL_NAMES: [&str; 3] = ["sort", "limit", "offset"];

impl Field {
    /// Every field, in the order of the documentation table.
    pub const ALL: [Field; 19] = {
        let mut all = [Field::GpuName; 19];
        let mut i = 0;
        while i < FIELDS.len() {
            all[i] = FIELDS[i].field;
            i += 1;
        }
        all
    };

    fn info(self) -> &'static FieldInfo {
        &FIELDS[self as usize]
    }

    /// The canonical name, as `Display` and the canonical query text write it.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Other names users may type for this field.
    pub fn aliases(self) -> &'static [&'static str] {
        self.info().aliases
    }

    /// What kind of value the field holds.
    pub fn kind(self) -> FieldKind {
        self.info().kind
    }

    /// Whether `sort=` accepts this field.
    pub fn is_sortable(self) -> bool {
        self.info().sortable
    }

    /// The unit values are shown in (" GiB", " QU", " h"), with a leading space, or "".
    pub fn unit(self) -> &'static str {
        self.info().unit
    }

    /// An example constraint on this field, for help texts and error messages.
    pub fn example(self) -> &'static str {
        self.info().example
    }

    /// The field called `name` (canonical or alias, any case).
    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .find(|i| {
                i.name.eq_ignore_ascii_case(name)
                    || i.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            })
            .map(|i| i.field)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The known name closest to `typo` (fields, aliases, `sort`/`limit`/`offset`), if one is
/// within a typo or two of it.
pub(crate) fn suggest(typo: &str) -> Option<&'static str> {
    let typo = typo.to_ascii_lowercase();
    let names = FIELDS
        .iter()
        .flat_map(|i| std::iter::once(i.name).chain(i.aliases.iter().copied()))
        .chain(CONTROL_NAMES);
    names
        .map(|name| (edit_distance(&typo, name), name))
        .filter(|&(d, name)| d <= if name.len() <= 4 { 1 } else { 2 })
        .min_by_key(|&(d, _)| d)
        .map(|(_, name)| name)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbours each cost 1, so `gpu_rma` is one step from `gpu_ram`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[0] is two rows back, rows[1] the previous row, rows[2] the current one.
    let mut rows = [
        vec![0; b.len() + 1],
        (0..=b.len()).collect::<Vec<_>>(),
        vec![0; b.len() + 1],
    ];
    for (i, &ca) in a.iter().enumerate() {
        rows[2][0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (rows[1][j] + cost)
                .min(rows[1][j + 1] + 1)
                .min(rows[2][j] + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca) {
                d = d.min(rows[0][j - 1] + 1);
            }
            rows[2][j + 1] = d;
        }
        rows.rotate_left(1);
    }
    rows[1][b.len()]
}
