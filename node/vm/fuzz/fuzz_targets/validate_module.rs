//! Any bytes given to the deploy-time validator either get a specific
//! `ValidationError` or a `ModuleInfo`; for accepted code the stack-height
//! instrumentation (under every gas schedule) must succeed and produce a module that is itself valid
//! under the contract feature set. Never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_vm::instrument::instrument;
use stele_vm::validate::features;
use stele_vm::{GasSchedule, VmLimits, validate};

fuzz_target!(|data: &[u8]| {
    for limits in VmLimits::ALL {
        let Ok(info) = validate(data, limits) else {
            continue;
        };
        for gas in GasSchedule::ALL {
            let instrumented = match instrument(data, &info, limits.stack_height_max, gas) {
                Ok(code) => code,
                Err(e) => panic!("validated code failed instrumentation: {e}"),
            };
            let mut validator = wasmparser::Validator::new_with_features(features());
            if let Err(e) = validator.validate_all(&instrumented) {
                panic!("instrumented code is invalid: {e}");
            }
        }
    }
});
