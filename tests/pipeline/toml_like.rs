//! Just enough reading of our own lock format for assertions (the builder's parser is tested
//! in its crate; here we read the text the way a reviewer would).

pub struct Doc {
    text: String,
}
impl Doc {
    pub fn parse(text: &str) -> Doc {
        Doc {
            text: text.to_string(),
        }
    }
    fn blocks(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for line in self.text.lines() {
            if line.starts_with('[') {
                out.push((line.to_string(), Vec::new()));
            } else if let Some(last) = out.last_mut() {
                last.1.push(line.to_string());
            }
        }
        out
    }
    fn value(lines: &[String], key: &str) -> Option<String> {
        lines.iter().find_map(|l| {
            l.strip_prefix(&format!("{key} = "))
                .map(|v| v.trim_matches('"').to_string())
        })
    }
    pub fn platform_names(&self) -> Vec<String> {
        self.blocks()
            .iter()
            .filter(|(h, _)| h == "[[platform]]")
            .filter_map(|(_, l)| Self::value(l, "name"))
            .collect()
    }
    /// (name, filename) of every package of a platform.
    pub fn packages(&self, platform: &str) -> Vec<(String, String)> {
        let mut current = String::new();
        let mut out = Vec::new();
        for (h, lines) in self.blocks() {
            if h == "[[platform]]" {
                current = Self::value(&lines, "name").unwrap_or_default();
            } else if h == "[[platform.package]]" && current == platform {
                out.push((
                    Self::value(&lines, "name").unwrap_or_default(),
                    Self::value(&lines, "filename").unwrap_or_default(),
                ));
            }
        }
        out
    }
}
