"""Program generators: the interface every program source implements, the offline
mutator, and CMA-ES constant tuning. Language-model generators plug in through the
same ``Generator`` protocol."""

from scriptrl.generators.base import (
    Candidate,
    GenContext,
    Generator,
    GeneratorCall,
    ParentInfo,
    clamp_temperature,
)
from scriptrl.generators.offline import OfflineMutator
from scriptrl.generators.tuning import (
    ConstantTuner,
    extract_constants,
    with_constants,
)

__all__ = [
    "Candidate",
    "ConstantTuner",
    "GenContext",
    "Generator",
    "GeneratorCall",
    "OfflineMutator",
    "ParentInfo",
    "clamp_temperature",
    "extract_constants",
    "with_constants",
]
