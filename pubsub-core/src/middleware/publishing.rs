//! Publish layers: what a layer around publishing sees and answers.
