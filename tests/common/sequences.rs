//! Continuous batching checked against each sequence alone: any engine's `step` over
//! sequences that start at different steps, a prompt split in chunks, prompts beside decode
//! steps, and a slot released and reused, gives each entry the logits that sequence's own
//! prefill and decode steps give. Also: a slot twice in one step, a slot beyond the engine's
//! and an empty entry are refused.

use llm_bench::engine::Work;

/// The largest difference between `a` and `b`, relative to the spread of `b`.
pub fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    let spread = b.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v))
        - b.iter().fold(f32::INFINITY, |m, v| m.min(*v));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / spread
}

/// Runs the schedule on `model` (token ids below 128), each entry's logits within
/// `tolerance` (relative to the logits' spread) of the sequence alone; `label` names the case.
pub fn come_and_go(model: &mut llm_bench::Model, tolerance: f32, label: &str) {
    let prompts: [Vec<u32>; 3] = [(1..13).collect(), vec![40, 41, 42], (60..80).collect()];
    let decoded: [Vec<u32>; 3] = [vec![7, 11, 5], vec![3, 9], vec![100, 101, 102, 103]];
    // Alone: the prompt, then one token per step; the logits after each.
    let alone: Vec<Vec<Vec<f32>>> = (prompts.iter().zip(&decoded))
        .map(|(prompt, tokens)| {
            let mut out = vec![model
                .engine
                .prefill(std::slice::from_ref(prompt))
                .unwrap()
                .data
                .clone()];
            for &t in tokens {
                out.push(model.engine.decode(&[t]).unwrap().data.clone());
            }
            out
        })
        .collect();
    model.engine.reset();
    let vocab = alone[0][0].len();
    // (sequence, slot, tokens, which of its logits the entry's should equal)
    type Entry = (usize, usize, Vec<u32>, Option<usize>);
    let schedule: Vec<Vec<Entry>> = vec![
        vec![(0, 0, prompts[0][..5].to_vec(), None)],
        vec![
            (0, 0, prompts[0][5..].to_vec(), Some(0)),
            (1, 1, prompts[1].clone(), Some(0)),
        ],
        vec![
            (1, 1, vec![decoded[1][0]], Some(1)),
            (0, 0, vec![decoded[0][0]], Some(1)),
        ],
        vec![
            (0, 0, vec![decoded[0][1]], Some(2)),
            (1, 1, vec![decoded[1][1]], Some(2)),
        ],
        // Sequence 1 has ended and its slot is released: sequence 2 takes it.
        vec![
            (2, 1, prompts[2].clone(), Some(0)),
            (0, 0, vec![decoded[0][2]], Some(3)),
        ],
        vec![(2, 1, vec![decoded[2][0]], Some(1))],
        vec![(2, 1, decoded[2][1..].to_vec(), Some(4))],
    ];
    for (i, step) in schedule.iter().enumerate() {
        if i == 4 {
            model.engine.release(1);
        }
        let work: Vec<Work> = step
            .iter()
            .map(|(_, slot, tokens, _)| Work {
                slot: *slot,
                tokens,
            })
            .collect();
        let logits = model.engine.step(&work).unwrap();
        assert_eq!(logits.data.len(), step.len() * vocab);
        for (entry, (sequence, _, _, want)) in step.iter().enumerate() {
            let Some(want) = want else { continue };
            let difference = relative_difference(logits.row(entry), &alone[*sequence][*want]);
            assert!(
                difference < tolerance,
                "{label}, step {i}, sequence {sequence}: {difference}"
            );
        }
    }
    let beyond = model.engine.max_sequences();
    for (work, shown) in [
        (
            vec![
                Work {
                    slot: 0,
                    tokens: &[1],
                },
                Work {
                    slot: 0,
                    tokens: &[2],
                },
            ],
            "twice",
        ),
        (
            vec![Work {
                slot: beyond,
                tokens: &[1],
            }],
            "beyond",
        ),
        (
            vec![Work {
                slot: 2,
                tokens: &[],
            }],
            "zero tokens",
        ),
    ] {
        let err = model.engine.step(&work).unwrap_err().to_string();
        assert!(err.contains(shown), "{label}, {shown}: {err}");
    }
}
