//! Handler layers: what a layer around a handler sees and answers.
