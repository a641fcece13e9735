# One feature-extraction job per model (not per subject): it runs the network once over the
# stimulus set and writes one file per configured layer. Rules are defined per model because
# each model has its own list of layer outputs. A model's local weights (a state dict file, or
# a Hugging Face folder) are inputs: replacing them reruns the model.
from brainalign.features.checkpoints import CHECKPOINT_KEYS
from brainalign.features.sources import weight_inputs

for _model, _spec in MODELS.items():

    rule:
        name:
            f"features_extract_{_model}"
        input:
            stimuli=P.stimuli_manifest(),
            images=STIMULUS_FILES,
            weights=weight_inputs(_spec),
        output:
            **{layer: P.features(_model, layer) for layer in _spec["layers"]},
        log:
            P.log("features_extract", f"model-{_model}"),
        conda:
            "../envs/features.yaml"
        container:
            CONTAINERS["features"]
        threads: 2
        resources:
            mem_mb=8000,
            runtime=60,
        params:
            name=_model,
            # without the checkpoint's place in its family: inserting a checkpoint into a
            # trajectory must not rerun the others
            spec={k: v for k, v in _spec.items() if k not in CHECKPOINT_KEYS},
            settings={k: v for k, v in CFG["features"].items() if k != "models"},
            version=BRAINALIGN_VERSION,
        script:
            "../scripts/features_extract.py"
