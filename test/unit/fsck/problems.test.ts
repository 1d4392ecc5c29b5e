/**
 * The problem table (e2fsck's verify_problem_table): unique codes in ascending order, each in its
 * pass's range and named PR_<pass>_<WHAT>, full-sentence messages whose placeholders are
 * well-formed. That every code is raised by some corruption is checked at the end of
 * cases.test.ts.
 */
import {expect} from 'chai'

import {PR, PROBLEMS, PROBLEM_BY_CODE, PROMPTS, codeString, formatMessage} from '../../../src/fsck/problems.js'

describe('fsck: the problem table', () => {
  it('has unique codes, sorted ascending', () => {
    const codes = PROBLEMS.map(p => p.code)
    expect(new Set(codes).size).to.equal(codes.length)
    expect(codes).to.deep.equal([...codes].sort((a, b) => a - b))
    expect(PROBLEM_BY_CODE.size).to.equal(PROBLEMS.length)
  })

  it("has unique ids PR_<pass>_<WHAT> whose pass is the code's 0xPP", () => {
    expect(new Set(PROBLEMS.map(p => p.id)).size).to.equal(PROBLEMS.length)
    for (const p of PROBLEMS) {
      const match = /^PR_(\d)_[A-Z0-9_]+$/.exec(p.id)
      expect(match, p.id).to.not.equal(null)
      expect(p.code >>> 16, p.id).to.equal(Number(match![1]))
      expect(p.code, p.id).to.be.below(0x0a_0000)
      expect(PR[p.id as keyof typeof PR]).to.equal(p.code)
    }
  })

  it('has a header (0xPP0000) for each pass 0 to 9 (8 and 9: a shared volume), and only headers at NNNN = 0', () => {
    for (let pass = 0; pass <= 9; pass++) expect(PROBLEM_BY_CODE.get(pass << 16)?.header, `pass ${pass}`).to.equal(true)
    for (const p of PROBLEMS) expect(Boolean(p.header), p.id).to.equal((p.code & 0xffff) === 0)
  })

  it('words every message as a sentence with {named} placeholders', () => {
    for (const p of PROBLEMS) {
      expect(p.message, p.id).to.match(/^[A-Z/a-z{]/)
      if (!p.header) expect(p.message, p.id).to.match(/\.$/)
      expect(p.message.replaceAll(/\{\w+\}/g, ''), p.id).to.not.match(/[{}]/)
      expect(p.message, p.id).to.not.include('%')
    }
  })

  it('gives every row a prompt; fatal rows and headers ask nothing; noOk only where "no" is legitimate', () => {
    for (const p of PROBLEMS) {
      expect(PROMPTS[p.prompt], p.id).to.not.equal(undefined)
      expect(p.prompt === 'none', p.id).to.equal(Boolean(p.header) || Boolean(p.fatal))
    }

    expect(PROBLEMS.filter(p => p.noOk).map(p => p.id)).to.deep.equal(['PR_4_ORPHAN', 'PR_6_SPARE_CONTENT', 'PR_8_EXPIRED_SESSION'])
  })

  it('fills placeholders and formats codes as 0xPPNNNN', () => {
    expect(codeString(0x020003)).to.equal('0x020003')
    expect(formatMessage('Inode {slot} has {field} {value}.', {slot: 5, field: 'nlink', value: 0})).to.equal('Inode 5 has nlink 0.')
    expect(formatMessage('left {alone}', {})).to.equal('left {alone}')
  })
})
