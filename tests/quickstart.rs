//! The quickstart example's training (`examples/common/digits.rs`, the code the example
//! runs) reaches the accuracy the README states, >= 95 % on the held-out digits, with the
//! example's own configuration and fixed seeds.

#[path = "../examples/common/digits.rs"]
mod digits;

/// Fraction of rows whose largest logit is the label, counted on the host (an oracle
/// independent of `ferrax::nn::metrics::Accuracy`, which `digits::accuracy` uses).
fn host_accuracy(logits: &[f32], labels: &[i32]) -> f32 {
    let hits = logits
        .chunks_exact(10)
        .zip(labels)
        .filter(|(row, &t)| {
            let best = (0..10)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .expect("ten logits");
            best as i32 == t
        })
        .count();
    hits as f32 / labels.len() as f32
}

#[test]
fn quickstart_mlp_reaches_95_percent_on_held_out_digits() {
    let data = digits::load().expect("embedded digits data");
    // The split: 1797 images, 360 held out, every class present in both parts.
    let (n_train, n_test) = (data.y_train.dims()[0], data.y_test.dims()[0]);
    assert_eq!((n_train, n_test), (1797 - digits::N_TEST, digits::N_TEST));
    assert_eq!(data.aug_y.len(), 9 * n_train, "8 shifted copies per image");
    for y in [&data.y_train, &data.y_test] {
        let labels = y.to_vec().expect("labels");
        for class in 0..10 {
            assert!(
                labels.contains(&class),
                "class {class} missing from a split"
            );
        }
    }

    let cfg = digits::Config::default();
    let mut steps = 0;
    let mut first_loss = None;
    let mut last_loss = None;
    let total = cfg.epochs * cfg.steps_per_epoch(&data);
    let model = digits::train::<{ digits::HIDDEN }>(
        &data,
        &cfg,
        |_, _, loss| {
            steps += 1;
            if let Some(l) = loss {
                first_loss.get_or_insert(l);
                last_loss = Some(l);
            }
        },
        |step| step == 0 || step + 1 == total,
    )
    .expect("training");
    assert_eq!(steps, total);
    // Ten balanced classes: the untrained loss is near ln 10; the trained one far below.
    let (first, last) = (
        first_loss.expect("first loss"),
        last_loss.expect("last loss"),
    );
    assert!((first - 10f32.ln()).abs() < 1.0, "initial loss {first}");
    assert!(last < 0.1, "final batch loss {last} (initial {first})");

    let acc = digits::accuracy(&model, &data.x_test, &data.y_test).expect("accuracy");
    let logits = model.forward(&data.x_test).to_vec().expect("logits");
    let labels = data.y_test.to_vec().expect("labels");
    let host = host_accuracy(&logits, &labels);
    assert!(
        (acc - host).abs() < 1e-6,
        "metric {acc} vs host count {host}"
    );
    assert!(
        acc >= 0.95,
        "test accuracy {:.2}% is below the stated 95%",
        100.0 * acc
    );
}
