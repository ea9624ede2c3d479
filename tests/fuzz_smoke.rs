//! The fuzz targets' smoke run for every test pass: the committed seed corpus (fuzz/corpus/,
//! real layers, artifacts, locks, wheel metadata and OCI JSON) plus deterministic mutations of
//! each seed (byte flips, truncations, splices) go through the same harness the cargo-fuzz
//! targets use. Long coverage-guided runs are `scripts/fuzz.sh`.

use envpack_e2e::repo_root;

/// xorshift64*: reproducible mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    if v.is_empty() {
        return vec![rng.next() as u8];
    }
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        1 => v.truncate(rng.below(v.len())),
        2 => {
            let i = rng.below(v.len());
            v[i] = [0x00, 0xff, b'.', b'/', b'\\', b'"', b'\n', b'9'][rng.below(8)];
        }
        3 => {
            // Duplicate a slice in place (repeated headers, repeated keys).
            let a = rng.below(v.len());
            let b = (a + 1 + rng.below(512)).min(v.len());
            let piece = v[a..b].to_vec();
            v.splice(a..a, piece);
        }
        _ => {
            let i = rng.below(v.len());
            let digits = (rng.next() % 1_000_000_000_000).to_string();
            v.splice(i..(i + digits.len()).min(v.len()), digits.bytes());
        }
    }
    v
}

#[test]
fn seed_corpus_and_mutations_never_panic() {
    let corpus = repo_root().join("fuzz/corpus");
    let mut report = Vec::new();
    for (name, target) in envpack_fuzz_harness::TARGETS {
        let dir = corpus.join(name);
        let mut seeds: Vec<_> = fs_err::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no seed corpus for {name}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "empty seed corpus for {name}");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        let mut runs = 0;
        for seed in &seeds {
            let bytes = fs_err::read(seed).unwrap();
            target(&bytes);
            // Big seeds (whole artifacts) get fewer mutations: each run re-reads them.
            let n = if bytes.len() > 64 * 1024 { 40 } else { 300 };
            for _ in 0..n {
                target(&mutate(&bytes, &mut rng));
            }
            runs += 1 + n;
        }
        report.push(format!("{name}: {} seeds, {runs} inputs", seeds.len()));
    }
    println!("{}", report.join("\n"));
}
