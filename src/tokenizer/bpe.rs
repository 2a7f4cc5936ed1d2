//! Hugging Face `tokenizer.json` specs of the two BPE kinds GGUF files carry: byte-level
//! (GPT-2 style, as Llama 3, Qwen and SmolLM2 use) and SentencePiece (Llama 2, Mistral).

use serde_json::{json, Value as Json};

/// GPT-2's printable stand-ins for the 256 bytes, in byte order.
pub(super) fn byte_alphabet() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shift = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                shift += 1;
                char::from_u32(255 + shift).unwrap()
            }
        })
        .collect()
}

pub(super) fn byte_level_split(use_regex: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

pub(super) fn byte_level_bpe(
    tokens: &[String],
    merges: &[String],
    pre_tokenizer: Json,
    added_tokens: Vec<Json>,
) -> Json {
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

/// SentencePiece BPE as Hugging Face's `LlamaConverter` rebuilds it: merges recovered from the
/// vocabulary, ranked by the merged piece's score.
pub(super) fn sentencepiece_bpe(
    tokens: &[String],
    scores: &[f32],
    add_space_prefix: bool,
    added_tokens: Vec<Json>,
) -> Json {
    let ids: std::collections::HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    // A split can only be a merge where both halves are tokens, so only the lengths tokens
    // have are tried: a 400 KB piece costs a few lookups, not one per character (quadratic).
    let mut lengths: Vec<usize> = tokens.iter().map(String::len).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut merges: Vec<(usize, usize, f32)> = Vec::new();
    for (merged_id, piece) in tokens.iter().enumerate() {
        let mut local: Vec<(usize, usize, f32)> = lengths
            .iter()
            .copied()
            .take_while(|&split| split < piece.len())
            .filter(|&split| split > 0 && piece.is_char_boundary(split))
            .filter(|&split| lengths.binary_search(&(piece.len() - split)).is_ok())
            .filter_map(|split| {
                let (l, r) = piece.split_at(split);
                Some((
                    *ids.get(l)?,
                    *ids.get(r)?,
                    scores.get(merged_id).copied().unwrap_or(0.0),
                ))
            })
            .collect();
        local.sort_by_key(|&(l, r, _)| (l, r));
        merges.extend(local);
    }
    merges.sort_by(|a, b| b.2.total_cmp(&a.2));
    let merges: Vec<Json> = merges
        .iter()
        .map(|&(l, r, _)| json!([tokens[l], tokens[r]]))
        .collect();
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let mut normalizers = vec![];
    if add_space_prefix {
        normalizers.push(json!({"type": "Prepend", "prepend": "▁"}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": if add_space_prefix { 1 } else { 0 }, "stop": 0}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": tokens.first(), "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let alphabet = byte_alphabet();
        let unique: std::collections::HashSet<_> = alphabet.iter().collect();
        assert_eq!(unique.len(), 256);
        assert_eq!(alphabet[b' ' as usize], 'Ġ');
    }

    #[test]
    fn sentencepiece_merges_are_every_split_into_two_tokens() {
        let tokens: Vec<String> = [
            "<unk>", "▁", "é", "a", "▁é", "éa", "▁éa", "aa", "aaa", "▁aaa",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        // Every split at every character, as the merges are defined.
        let mut naive: Vec<(String, String)> = Vec::new();
        for piece in &tokens {
            for (split, _) in piece.char_indices().skip(1) {
                let (l, r) = piece.split_at(split);
                if tokens.iter().any(|t| t == l) && tokens.iter().any(|t| t == r) {
                    naive.push((l.to_string(), r.to_string()));
                }
            }
        }
        let spec = sentencepiece_bpe(&tokens, &scores, true, vec![]);
        let mut merges: Vec<(String, String)> = spec["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m[0].as_str().unwrap().into(), m[1].as_str().unwrap().into()))
            .collect();
        merges.sort();
        naive.sort();
        assert_eq!(merges, naive);
        assert_eq!(merges.len(), 8, "{merges:?}");
    }

    #[test]
    fn a_huge_piece_builds_in_linear_time() {
        let mut tokens: Vec<String> = ["<unk>", "▁", "a", "aa"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        tokens.push("a".repeat(400_000));
        let scores = vec![0.0; tokens.len()];
        let started = std::time::Instant::now();
        let spec = sentencepiece_bpe(&tokens, &scores, true, vec![]);
        assert_eq!(spec["model"]["merges"].as_array().unwrap().len(), 1);
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    #[test]
    fn sentencepiece_merges_follow_scores() {
        let tokens: Vec<String> = ["<unk>", "▁", "a", "b", "ab", "▁ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, -1.0, -2.0, -3.0, -0.5, -0.1];
        let spec = sentencepiece_bpe(&tokens, &scores, true, vec![]);
        let tok = serde_json::from_value::<tokenizers::Tokenizer>(spec).unwrap();
        let ids = tok.encode("ab", false).unwrap().get_ids().to_vec();
        assert_eq!(ids, vec![5], "'▁ab' is one piece");
        assert_eq!(
            tok.decode(&[5, 4], true).unwrap(),
            "abab",
            "leading space stripped once"
        );
    }
}
